export * from "./gpu-validation-suite";
export * from "./gpu-validation";
export * from "./validation-job";
