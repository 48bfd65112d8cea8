export * from "./ecr";
export * from "./local-registry";
export * from "./registry-repository";
