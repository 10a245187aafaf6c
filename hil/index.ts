// Public face of hil/; filled in by its issue.
export {};
