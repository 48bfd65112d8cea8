import * as pulumi from "@pulumi/pulumi";
import type { RegistryCredentials } from "../../lib/registry";
import { NotebookValidation } from "./notebook-validation";
import type { ExecutedStorage, RuntimeJobSettings } from "./runtime-jobs";
import { SizeGate } from "./size-gate";
import { SmokeTest } from "./smoke-test";

/** What the run-time gates need of one image spec (index.ts maps an ImageSpec onto this). */
export interface RuntimeImage {
  /** The spec's id. */
  id: string;
  /** GPU images get only the size gate here: their smoke test runs inside the GPU check (GpuValidationSuite). */
  gpu: boolean;
  /** The catalog's smoke test (the base's, for a per-user image). */
  smoke: { command: string[] };
  /** The catalog's sizeBudgetMB: compressed MB a node pulls per platform (image-size.ts). */
  sizeBudgetMB: number;
  /**
   * A notebook-validator tier image: its tier (catalog build target) and the group its user writes with (runAs.gid).
   * @default none: not a notebook tier image, no notebook Job
   */
  notebooks?: { tier: string; fsGroup: number };
}

export interface RuntimeGatesArgs {
  image: RuntimeImage;
  /** The image's gated ref (gateImage's imageRef): every gate here runs after the scan, signature and attestations. */
  imageRef: pulumi.Input<string>;
  /**
   * The validation namespace's name, from its Namespace resource (the first GpuValidationSuite's).
   * Required for CPU images, which get Jobs; unused for GPU images.
   */
  namespace?: pulumi.Input<string>;
  settings: RuntimeJobSettings;
  /** Registry credentials for the size gate's skopeo (ECR). @default skopeo's own login */
  credentials?: Pick<RegistryCredentials, "username" | "password">;
  /** The executed-notebooks claim of a tier image. @default 1Gi of the default StorageClass */
  notebookStorage?: ExecutedStorage;
}

/**
 * The run-time gates of one image (issue #14), chained in this order, each consuming the previous one's ref:
 * size (SizeGate: the registry's manifests against sizeBudgetMB) → smoke test (SmokeTest, CPU images) → notebooks
 * (NotebookValidation, notebook-validator tiers). The size gate comes first because the Jobs' pull budget assumes
 * the image fits its budget. `checkedRef` resolves only after every gate of this image passed; for a GPU image it is
 * the sized ref, which the GPU check Jobs must consume so that they also run after it.
 */
export class RuntimeGates extends pulumi.ComponentResource {
  readonly size: SizeGate;
  readonly smoke?: SmokeTest;
  readonly notebooks?: NotebookValidation;
  /** Resolves after the size gate. */
  readonly sizedRef: pulumi.Output<string>;
  /** Resolves after the smoke Job (CPU images only). */
  readonly smokedRef?: pulumi.Output<string>;
  /** Resolves after the notebook Job (tier images only). */
  readonly validatedRef?: pulumi.Output<string>;
  /** The gated ref, resolved after every gate here. */
  readonly checkedRef: pulumi.Output<string>;

  constructor(name: string, args: RuntimeGatesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:validation:RuntimeGates", name, {}, opts);
    const { image } = args;
    const problems: string[] = [];
    if (!image.gpu && args.namespace === undefined) problems.push(`image "${image.id}" is a CPU image: pass namespace, where its smoke Job runs.`);
    if (image.gpu && image.notebooks !== undefined) {
      problems.push(`image "${image.id}" is a GPU image with a notebook tier; notebook tiers run on CPU nodes. Set gpu: false for it in images/catalog.yaml.`);
    }
    if (problems.length > 0) throw new pulumi.ResourceError(`RuntimeGates ${name}:\n${problems.map((p) => `  - ${p}`).join("\n")}`, this);

    this.size = new SizeGate(
      `${name}-size`,
      { id: image.id, ref: args.imageRef, budgetMB: image.sizeBudgetMB, ...(args.credentials ? { credentials: args.credentials } : {}) },
      { parent: this },
    );
    this.sizedRef = this.size.sizedRef;
    let ref = this.sizedRef;
    if (!image.gpu) {
      const namespace = args.namespace!;
      this.smoke = new SmokeTest(
        `${name}-smoke`,
        { image: { name: image.id, smoke: image.smoke, sizeBudgetMB: image.sizeBudgetMB }, imageRef: ref, namespace, settings: args.settings },
        { parent: this },
      );
      this.smokedRef = this.smoke.smokedRef;
      ref = this.smokedRef;
      if (image.notebooks !== undefined) {
        this.notebooks = new NotebookValidation(
          `${name}-notebooks`,
          {
            image: { name: image.id, sizeBudgetMB: image.sizeBudgetMB },
            tier: image.notebooks.tier,
            fsGroup: image.notebooks.fsGroup,
            imageRef: ref,
            namespace,
            settings: args.settings,
            ...(args.notebookStorage ? { storage: args.notebookStorage } : {}),
          },
          { parent: this },
        );
        this.validatedRef = this.notebooks.validatedRef;
        ref = this.validatedRef;
      }
    }
    this.checkedRef = ref;
    this.registerOutputs({
      sizedRef: this.sizedRef,
      ...(this.smokedRef ? { smokedRef: this.smokedRef } : {}),
      ...(this.validatedRef ? { validatedRef: this.validatedRef } : {}),
      checkedRef: this.checkedRef,
    });
  }
}
