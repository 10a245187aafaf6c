// Public face of src/bureau; filled in by its issue.
export {};
