import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { APP_LABEL } from "./validation-job";

export interface ValidationNamespaceArgs {
  /** The stack's validation.namespace. */
  name: string;
}

/**
 * The validation namespace for a stack without GPU images, whose GpuValidationSuite (the namespace's usual owner)
 * does not exist: same name and labels, Pod Security "restricted" enforced. A stack with a GPU image must use the
 * suite's namespace instead; two Namespace resources with one name would collide.
 */
export class ValidationNamespace extends pulumi.ComponentResource {
  readonly namespace: k8s.core.v1.Namespace;
  /** The namespace's name, resolved once it exists. */
  readonly name: pulumi.Output<string>;

  constructor(name: string, args: ValidationNamespaceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:validation:ValidationNamespace", name, {}, opts);
    this.namespace = new k8s.core.v1.Namespace(
      `${name}-namespace`,
      {
        metadata: {
          name: args.name,
          labels: { "app.kubernetes.io/name": APP_LABEL, "app.kubernetes.io/part-of": "workbench-images", "pod-security.kubernetes.io/enforce": "restricted" },
        },
      },
      { parent: this },
    );
    this.name = this.namespace.metadata.name;
    this.registerOutputs({ name: this.name });
  }
}
