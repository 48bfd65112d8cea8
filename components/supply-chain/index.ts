export * from "./admission-policy";
export * from "./cosign";
export * from "./gate-image";
export * from "./kyverno";
export * from "./scan-gate";
export * from "./signing-key";
export * from "./signing-policy";
export * from "./trivy";
