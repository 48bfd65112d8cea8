/**
 * The configuration module: everything decided before any resource exists (issue #10). Schema and types
 * (schema.ts), the catalog (catalog.ts), cross-key rules (rules.ts, pools.ts, users.ts), loading (load.ts), the
 * resolved image specs the program builds from (images.ts), and the stack-outputs contract (stack-outputs.ts).
 */
export * from "./schema";
export * from "./catalog";
export * from "./load";
export * from "./images";
export * from "./stack-outputs";
