export * from "./discovery";
export * from "./discovery-registration";
export * from "./hub-values";
export * from "./jupyter-hub";
export * from "./kubespawner";
export * from "./pre-puller";
export * from "./profiles";
