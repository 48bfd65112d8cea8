export * from "./copy";
export * from "./promoted-image";
export * from "./release-tag";
