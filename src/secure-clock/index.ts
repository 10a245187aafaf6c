// Public face of src/secure-clock; filled in by its issue.
export {};
