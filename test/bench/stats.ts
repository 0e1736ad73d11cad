export function median(values: number[]): number {
    const s = [...values].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Runs a benchmark's main function as a script: exit 0 when it finishes, 1 with the error otherwise. */
export function runBenchmark(main: () => Promise<void>): void {
    main().then(
        () => process.exit(0),
        (err) => {
            console.error(err);
            process.exit(1);
        },
    );
}

/** A script's arguments: `--name value` options and the one bare number (the rounds), wherever it stands. */
export function scriptArguments(argv = process.argv.slice(2)): { rounds: number | undefined; option: (name: string) => string | undefined } {
    const options = new Map<string, string>();
    let rounds: number | undefined;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i].startsWith("--")) options.set(argv[i].slice(2), argv[++i]);
        else if (/^\d+$/.test(argv[i])) rounds = Number(argv[i]);
        else throw new Error(`unexpected argument ${argv[i]}`);
    }
    return { rounds, option: (name) => options.get(name) };
}

/** A caption line and a markdown table, as the scripts' reports write them. */
export function markdownTable(caption: string, header: readonly string[], rows: readonly (readonly string[])[]): string {
    return [caption, "", `| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`), ""].join("\n");
}
