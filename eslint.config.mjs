import tseslint from "typescript-eslint";

export default tseslint.config(
    { ignores: ["node_modules/", "bin/", "dist/", ".hadb-harness/"] },
    ...tseslint.configs.recommended,
    {
        rules: {
            // The harness reads provider inputs and Docker API answers, which are untyped JSON.
            "@typescript-eslint/no-explicit-any": "off",
            "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
        },
    },
);
