/**
 * Runs a few components under Pulumi's mock runtime as a preview or as an update, and records what each resource
 * receives. The shared plan runtime (scripts/lib/plan-runtime.ts) always runs as an update (`setMocks(…, false)`);
 * issue #12's preview behaviour needs the preview flag, which `pulumi.runtime.isDryRun()` reads from `setMocks`.
 */
import * as crypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

export interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

const ACCOUNT = "111122223333";
const REGION = "eu-west-1";
export const ECR_HOST = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`;

function sha256(text: string): string {
  return crypto.createHash("sha256").update(text).digest("hex");
}

/** Runs `program` with `preview` as the engine's dry-run flag; returns every registration in order. */
export async function runUnderMocks(preview: boolean, program: () => void): Promise<Registered[]> {
  const seen: Registered[] = [];
  pulumi.runtime.setAllConfig({ "aws:region": REGION }, []);
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        const inputs = args.inputs as Record<string, unknown>;
        seen.push({ type: args.type, name: args.name, inputs });
        let state: Record<string, unknown> = inputs;
        if (args.type === "aws:ecr/repository:Repository") {
          state = { ...inputs, repositoryUrl: `${ECR_HOST}/${String(inputs["name"])}`, registryId: ACCOUNT };
        } else if (args.type === "docker-build:index:Image") {
          const tag = (inputs["tags"] as string[] | undefined)?.[0] ?? args.name;
          state = { ...inputs, digest: `sha256:${sha256(`digest:${tag}`)}` };
        }
        return { id: args.custom === false ? undefined : `${args.name}-id`, state } as pulumi.runtime.MockResourceResult;
      },
      call: (args) => args.inputs as Record<string, unknown>,
    },
    "workbench-images",
    "test",
    preview,
  );
  program();
  await (pulumi.runtime as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
  return seen;
}
