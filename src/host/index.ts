// Public face of src/host; filled in by its issue.
export {};
