export * from "./content-hash";
export * from "./image-variant";
