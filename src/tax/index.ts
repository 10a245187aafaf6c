// Public face of src/tax; filled in by its issue.
export {};
