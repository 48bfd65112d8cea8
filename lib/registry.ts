import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { isDigestPinned } from "./image-ref";
import { strictObject } from "./zod-util";

/**
 * Registry settings, the one definition (issue #10): parsed by the stack configuration, read by the registry,
 * build and promotion modules. ECR for dev and prod; a loopback registry container for the local stack.
 */

export const PLATFORMS = ["linux/amd64", "linux/arm64"] as const;
export type Platform = (typeof PLATFORMS)[number];

/** docker.io/library/registry:2.8.3, the CNCF distribution registry, pinned by its published index digest. */
export const DEFAULT_LOCAL_REGISTRY_IMAGE =
  "docker.io/library/registry:2.8.3@sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373";

/** Credentials for a registry: the ECR token on dev and prod. The password is a Pulumi secret. */
export interface RegistryCredentials {
  address: pulumi.Input<string>;
  username: pulumi.Input<string>;
  password: pulumi.Input<string>;
}

const secretPasswords = new WeakMap<Pick<RegistryCredentials, "password">, pulumi.Output<string>>();

/**
 * The password as a Pulumi secret, whatever the caller passed: every command that gets it in its environment marks it
 * secret through this. One Output per credentials object, shared by all of them (issue #16: five `pulumi.secret`
 * copies per image, each with its own promises, were a measurable share of a large plan's cost).
 */
export function secretPassword(credentials: Pick<RegistryCredentials, "password">): pulumi.Output<string> {
  let secret = secretPasswords.get(credentials);
  if (secret === undefined) {
    secret = pulumi.secret(credentials.password);
    secretPasswords.set(credentials, secret);
  }
  return secret;
}

/**
 * The environment a command reads its registry login from: the username and the password (a secret, secretPassword)
 * under the two variable names that command's tool expects; nothing without credentials (the tool's own keychain).
 */
export function credentialEnvironment(
  credentials: Pick<RegistryCredentials, "username" | "password"> | undefined,
  usernameVar: string,
  passwordVar: string,
): Record<string, pulumi.Input<string>> {
  return credentials === undefined ? {} : { [usernameVar]: credentials.username, [passwordVar]: secretPassword(credentials) };
}

const repositoryPrefix = z
  .string()
  .regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/, {
    error: "must be lowercase path components of letters and digits joined by '.', '_', '-' or '/'.",
  });

const lifecycle = strictObject({
  /**
   * How many `build-*` images to keep per repository (the newest, released ones included in the count); images
   * tagged release-* or promoted-* are never expired (components/registry/ecr.ts, one protecting rule each).
   */
  keepTagged: z.number().int().min(1).max(10000).default(30),
  /** Days after which untagged manifests (superseded platform manifests, failed pushes) expire. */
  untaggedExpireDays: z.number().int().min(1).max(3650).default(1),
});

export const ecrRegistrySchema = strictObject({
  kind: z.literal("ecr"),
  region: z.string().regex(/^[a-z]{2}(?:-gov|-iso[a-z]*)?-[a-z]+-\d+$/, { error: 'must be an AWS region such as "us-east-1".' }),
  accountId: z
    .string({ error: "must be the 12-digit AWS account id, in quotes." })
    .regex(/^\d{12}$/, { error: "must be the 12-digit AWS account id, in quotes." }),
  repositoryPrefix: repositoryPrefix.default("workbench"),
  kmsKeyArn: z
    .string()
    .regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/.+$/, { error: "must be a KMS key or alias ARN." })
    .optional(),
  lifecycle: lifecycle.default({ keepTagged: 30, untaggedExpireDays: 1 }),
  forceDelete: z.boolean().default(false),
  /** Accounts allowed to pull (never push) from these repositories: prod's account on dev, for promotion. */
  pullAccountIds: z.array(z.string().regex(/^\d{12}$/, { error: "must be a 12-digit AWS account id, in quotes." })).default([]),
});

export const localRegistrySchema = strictObject({
  kind: z.literal("local"),
  /** Only loopback: the local registry has no authentication (issue #7: bound to 127.0.0.1). */
  host: z.enum(["127.0.0.1", "localhost"]).default("127.0.0.1"),
  port: z.number().int().min(1024).max(65535).default(5001),
  repositoryPrefix: repositoryPrefix.default("workbench"),
  /** Run the registry as a container managed by this program (false: one is already running there). */
  run: z.boolean().default(true),
  image: z
    .string()
    .refine(isDigestPinned, { error: "must be pinned by digest (image@sha256:…)." })
    .default(DEFAULT_LOCAL_REGISTRY_IMAGE),
  /** Docker engine endpoint that runs the registry container and the builds. */
  dockerHost: z
    .string()
    .regex(/^(?:unix:\/\/\/[^\s]+|npipe:\/\/\/[^\s]+|tcp:\/\/(?:127\.0\.0\.1|localhost|\[::1\]):\d{1,5})$/, {
      error: "must be this machine's Docker engine: unix:///path/docker.sock, npipe:///./pipe/docker_engine or tcp://127.0.0.1:<port> (the local registry has no authentication; a remote engine would expose it).",
    })
    .default("unix:///var/run/docker.sock"),
  /**
   * Platforms built on the local stack (intersected with each variant's): a laptop builds its own architecture, not
   * every platform the catalog ships (that needs QEMU emulation and is slow).
   */
  platforms: z.array(z.enum(PLATFORMS)).min(1).default(["linux/amd64"]),
  /**
   * The Docker network the local cluster's nodes run on (`kind` for kind). The registry joins it as host
   * `local-registry`, so nodes pull `127.0.0.1:<port>/…` through the containerd mirror `npm run up:local` writes.
   * null: do not join any network (k3d: use its own registry options).
   */
  clusterNetwork: z.string().min(1).nullable().default("kind"),
});

export const registrySchema = z.discriminatedUnion("kind", [ecrRegistrySchema, localRegistrySchema], {
  error: (iss) => (iss.code === "invalid_union" ? 'needs kind: "ecr" or kind: "local".' : undefined),
});

export type RegistryConfig = z.infer<typeof registrySchema>;
export type EcrRegistryConfig = Extract<RegistryConfig, { kind: "ecr" }>;
export type LocalRegistryConfig = Extract<RegistryConfig, { kind: "local" }>;

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost)(:\d+)?\//;

/**
 * Whether a repository's registry speaks plain http: only loopback addresses (the local stack, tests). Promotion's
 * copies and the size gates turn TLS verification off for these and only these.
 */
export function isLoopbackRepository(repository: string): boolean {
  return LOOPBACK.test(`${repository}/`);
}
