/** Settings over defaults: a key given as undefined keeps its default, as if it had been left out. */
export function withDefaults<D extends object, S extends object>(defaults: D, settings: S): D & S {
    const given = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
    return { ...defaults, ...given } as D & S;
}
