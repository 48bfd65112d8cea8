import { isDigest, requireDigestRef } from "../../lib/image-ref";
import { shellQuote } from "../../lib/shell";
/**
 * Cosign command lines and the KMS signing key's policy (issue #4), as pure functions tested without mocks.
 *
 * Flag names are those of cosign v2 (`cosign sign --help`, doc/cosign_sign.md and doc/cosign_verify.md at v2.5.3,
 * the version `signing.cosignVersion` pins). cosign v3 changes the default signature format, which Kyverno's
 * verifyImages may not read: keep to v2.
 */

/** Environment variables that carry registry credentials to the commands; never their values in the text. */
export const REGISTRY_USERNAME_ENV = "REGISTRY_USERNAME";
export const REGISTRY_PASSWORD_ENV = "REGISTRY_PASSWORD";

/** The tag cosign writes a digest's signatures under: `sha256-<hex>.sig` (cosign `triangulate`). */
export function cosignSignatureTag(digest: string): string {
  if (!isDigest(digest)) throw new Error(`not a sha256 digest: ${JSON.stringify(digest)}`);
  return `${digest.replace(":", "-")}.sig`;
}

// The four forms sigstore's AWS KMS provider accepts (sigstore/sigstore pkg/signature/kms/aws/client.go).
const UUID = "m?r?k?-?[A-Fa-f0-9]{8}-?[A-Fa-f0-9]{4}-?[A-Fa-f0-9]{4}-?[A-Fa-f0-9]{4}-?[A-Fa-f0-9]{12}";
const ARN = "arn:(?:aws|aws-us-gov):kms:([a-z0-9-]+):\\d{12}:";
const AWSKMS_FORMS = [
  new RegExp(`^awskms://[^/]*/${UUID}$`),
  new RegExp(`^awskms://[^/]*/${ARN}key/${UUID}$`),
  /^awskms:\/\/[^/]*\/alias\/.+$/,
  new RegExp(`^awskms://[^/]*/${ARN}alias/.+$`),
];

/** The cosign key reference of a KMS key: `awskms:///<key ARN>`, the form that names one key unambiguously. */
export function cosignKmsKeyRef(keyArn: string): string {
  return `awskms:///${keyArn}`;
}

/**
 * The region of an `awskms:///arn:…` reference. sigstore's AWS client loads the SDK's default config and never reads
 * the region from the ARN, so even the ARN form needs AWS_REGION in the command's environment; we set it from here.
 */
export function kmsRegionFromKeyRef(keyRef: string): string | undefined {
  return new RegExp(`^awskms://[^/]*/${ARN}`).exec(keyRef)?.[1];
}

function requireKeyRef(keyRef: string): void {
  if (!AWSKMS_FORMS.some((re) => re.test(keyRef))) {
    throw new Error(
      `args.keyRef must be an AWS KMS key reference cosign accepts (awskms:///arn:aws:kms:<region>:<account>:key/<id>), ` +
        `got ${JSON.stringify(keyRef)}. Pass the SigningKey's cosignKeyRef.`,
    );
  }
}

const ANNOTATION_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;

/** Quotes a word for /bin/sh: bare when it holds only safe characters, else single-quoted. */
export interface CosignSignOptions {
  /** `repository@sha256:<64 hex>`; a tag is refused. */
  ref: string;
  /** `awskms:///arn:…` (SigningKey.cosignKeyRef). */
  keyRef: string;
  /** Upload the signature to the public Rekor log (signing.tlogUpload). */
  tlogUpload: boolean;
  /** Signed `-a key=value` pairs, emitted sorted by key so the command text is stable. @default none */
  annotations?: Readonly<Record<string, string>>;
  /**
   * Pass registry credentials from $REGISTRY_USERNAME/$REGISTRY_PASSWORD.
   * @default true (ECR); false uses cosign's default keychain (docker config)
   */
  registryAuth?: boolean;
  /**
   * The cosign version the stack pins (signing.cosignVersion): the command refuses to sign with another one.
   * @default no check
   */
  cosignVersion?: string;
}

const COSIGN_VERSION = /^v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/;

/**
 * A guard that fails unless `cosign version --json` reports exactly `version` (release-utils' Info: "gitVersion").
 * cosign v3 signs in a format Kyverno may not read, so another version must not sign silently.
 */
export function cosignVersionGuard(version: string): string {
  if (!COSIGN_VERSION.test(version)) throw new Error(`signing.cosignVersion must be a cosign release such as "v2.5.3", got ${JSON.stringify(version)}.`);
  // Grouped, so that `step && <guard> && cosign …` never reads a failed earlier step as a wrong cosign (sh's && and
  // || bind equally, left to right).
  return (
    `{ cosign version --json 2>/dev/null | grep -Eq '"gitVersion": *"${version.replace(/\./g, "\\.")}"' || ` +
    `{ echo "cosign on PATH is not ${version}, the version signing.cosignVersion pins: install ${version} (docs/supply-chain.md, Tool versions)" >&2; exit 1; }; }`
  );
}

function annotationArgs(annotations: Readonly<Record<string, string>> | undefined): string[] {
  const out: string[] = [];
  for (const key of Object.keys(annotations ?? {}).sort()) {
    if (!ANNOTATION_KEY.test(key)) {
      throw new Error(
        `args.annotations key ${JSON.stringify(key)} is not a valid annotation key: use letters, digits, '.', '_', '/' and '-' ` +
          "(cosign splits -a at the first '=').",
      );
    }
    out.push("-a", shellQuote(`${key}=${annotations![key]}`));
  }
  return out;
}

/**
 * Registry credentials for one cosign run without putting the password on any command line (where `ps` shows it to
 * every process of the machine): the shell's own printf writes a Docker config for the ref's registry into a private
 * temporary folder, removed when the shell exits, and cosign reads it through DOCKER_CONFIG (go-containerregistry's
 * default keychain). Only the shell and base64's stdin see $REGISTRY_PASSWORD.
 */
export function registryAuthSetup(ref: string): string {
  const host = requireDigestRef(ref, "cosign pushes").repository.split("/")[0]!;
  return (
    `{ WB_DOCKER_CONFIG=$(mktemp -d) && trap 'rm -rf "$WB_DOCKER_CONFIG"' EXIT && ` +
    `printf '{"auths":{"%s":{"auth":"%s"}}}' ${shellQuote(host)} "$(printf '%s:%s' "$${REGISTRY_USERNAME_ENV}" "$${REGISTRY_PASSWORD_ENV}" | base64 | tr -d '\\n')" ` +
    `> "$WB_DOCKER_CONFIG/config.json" && export DOCKER_CONFIG="$WB_DOCKER_CONFIG"; }`
  );
}

/** `<version guard> && <registry auth> && <cosign …>`, each part only where it applies. */
function cosignSteps(options: { ref: string; registryAuth?: boolean; cosignVersion?: string }, cosign: string): string {
  return [
    ...(options.cosignVersion !== undefined ? [cosignVersionGuard(options.cosignVersion)] : []),
    ...((options.registryAuth ?? true) ? [registryAuthSetup(options.ref)] : []),
    cosign,
  ].join(" && ");
}

/**
 * `cosign sign` for one digest with the KMS key. Registry credentials come from the environment through a private
 * Docker config (registryAuthSetup); the text itself holds no secret and is stable across runs.
 */
export function cosignSignCommand(options: CosignSignOptions): string {
  requireDigestRef(options.ref, "cosign signs");
  requireKeyRef(options.keyRef);
  const sign = [
    "cosign",
    "sign",
    "--yes",
    "--key",
    shellQuote(options.keyRef),
    `--tlog-upload=${options.tlogUpload}`,
    ...annotationArgs(options.annotations),
    options.ref,
  ].join(" ");
  return cosignSteps(options, sign);
}

/**
 * The attestation types this program attaches, by cosign `--type` name, with the predicate type URI cosign writes for
 * each (cmd/cosign/cli/options/predicate.go PredicateTypeMap at v2.5.3): what Kyverno's `attestations[].type` matches.
 */
export const ATTESTATION_PREDICATE_TYPES = {
  cyclonedx: "https://cyclonedx.org/bom",
  slsaprovenance1: "https://slsa.dev/provenance/v1",
} as const;
export type AttestationType = keyof typeof ATTESTATION_PREDICATE_TYPES;

export interface CosignAttestOptions {
  /** `repository@sha256:<64 hex>`; a tag is refused. */
  ref: string;
  /** `awskms:///arn:…` (SigningKey.cosignKeyRef). */
  keyRef: string;
  /**
   * A predicate type keyword of cosign's, or a predicate type URI of our own (cosign uses a non-keyword `--type`
   * verbatim once it parses as a URI: options/predicate.go ParsePredicateType).
   */
  type: AttestationType | { uri: string };
  /** The predicate file, relative to the directory the command runs in. */
  predicate: string;
  /** Upload to the public Rekor log (signing.tlogUpload), as the signature. */
  tlogUpload: boolean;
  /** @default true (see CosignSignOptions.registryAuth) */
  registryAuth?: boolean;
  /** signing.cosignVersion: refuse to run with another cosign (cosignVersionGuard). @default no check */
  cosignVersion?: string;
}

/**
 * `cosign attest` of one predicate file to one digest with the KMS key: a signed in-toto statement whose subject is
 * the digest, pushed to the image's repository under `sha256-<hex>.att` (exempt from tag immutability, like `.sig`).
 * `--replace` drops an earlier attestation of the same predicate type first, so a re-run or a new key leaves one
 * attestation per type instead of piling them up.
 */
export function cosignAttestCommand(options: CosignAttestOptions): string {
  requireDigestRef(options.ref, "cosign attests");
  requireKeyRef(options.keyRef);
  const type = options.type;
  if (typeof type === "string" ? !(type in ATTESTATION_PREDICATE_TYPES) : !/^https:\/\/[^\s'"]+$/.test(type.uri)) {
    throw new Error(`args.type must be one of ${Object.keys(ATTESTATION_PREDICATE_TYPES).join(", ")} or an https predicate type URI, got ${JSON.stringify(type)}.`);
  }
  if (options.predicate.trim() === "") throw new Error('args.predicate must name the predicate file, got "".');
  const attest = [
    "cosign",
    "attest",
    "--yes",
    "--key",
    shellQuote(options.keyRef),
    "--type",
    typeof type === "string" ? type : shellQuote(type.uri),
    "--predicate",
    shellQuote(options.predicate),
    "--replace",
    `--tlog-upload=${options.tlogUpload}`,
    options.ref,
  ].join(" ");
  return cosignSteps(options, attest);
}

/** `cosign verify-attestation` for users and runbooks: the attestation of one type, by the same key, on the digest. */
export function cosignVerifyAttestationCommand(options: Omit<CosignVerifyOptions, "annotations"> & { type: AttestationType }): string {
  requireDigestRef(options.ref, "cosign verifies");
  if (options.key.trim() === "") throw new Error("args.key must name a KMS key reference or a public key file, got \"\".");
  return [
    "cosign",
    "verify-attestation",
    "--key",
    shellQuote(options.key),
    "--type",
    options.type,
    ...(options.tlogUpload ? [] : ["--insecure-ignore-tlog=true"]),
    options.ref,
  ].join(" ");
}

export interface CosignVerifyOptions {
  ref: string;
  /** A KMS reference (`awskms:///…`) or the path of a PEM public key file (`cosign.pub`). */
  key: string;
  /** Whether the signature was uploaded to Rekor; when not, verification must skip the log. */
  tlogUpload: boolean;
  /** Annotations the signature must carry. @default none */
  annotations?: Readonly<Record<string, string>>;
}

/** `cosign verify` for users and runbooks: the same digest and key, skipping Rekor when nothing was uploaded there. */
export function cosignVerifyCommand(options: CosignVerifyOptions): string {
  requireDigestRef(options.ref, "cosign verifies");
  if (options.key.trim() === "") throw new Error("args.key must name a KMS key reference or a public key file, got \"\".");
  return [
    "cosign",
    "verify",
    "--key",
    shellQuote(options.key),
    ...(options.tlogUpload ? [] : ["--insecure-ignore-tlog=true"]),
    ...annotationArgs(options.annotations),
    options.ref,
  ].join(" ");
}

export interface SigningKeyPolicyOptions {
  /** The account that owns the key; its root principal administers it. */
  accountId: string;
  /** `aws`, `aws-us-gov`, `aws-cn`. */
  partition: string;
  /** The only principals allowed to sign. */
  signerRoleArns: readonly string[];
}

/**
 * Administrative KMS actions the account keeps. Deliberately not `kms:Create*` (it includes kms:CreateGrant, and a
 * grant could hand kms:Sign to anyone) and no cryptographic operation: IAM policies in the account can delegate only
 * what this statement allows the root principal (AWS KMS Developer Guide, "Key policies": "Allows access to the AWS
 * account and enables IAM policies").
 */
export const KEY_ADMIN_ACTIONS = [
  "kms:CancelKeyDeletion",
  "kms:CreateAlias",
  "kms:DeleteAlias",
  "kms:Describe*",
  "kms:DisableKey",
  "kms:EnableKey",
  "kms:Get*",
  "kms:List*",
  "kms:PutKeyPolicy",
  "kms:RevokeGrant",
  "kms:ScheduleKeyDeletion",
  "kms:TagResource",
  "kms:UntagResource",
  "kms:UpdateAlias",
  "kms:UpdateKeyDescription",
] as const;

/** What cosign needs to sign with a KMS key: the public key and key metadata (to pick the algorithm), and Sign. */
export const SIGNER_ACTIONS = ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign"] as const;

/** The signing key's policy document (JSON text). */
export function signingKeyPolicy(options: SigningKeyPolicyOptions): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        // Without an administering principal a key whose signer roles are deleted can never be changed or deleted
        // again (only AWS Support can recover it), and CreateKey's lockout safety check refuses such a policy. The
        // account root keeps administration, not use: it can re-point the policy, but not sign.
        Sid: "AccountAdministersTheKeyButCannotSign",
        Effect: "Allow",
        Principal: { AWS: `arn:${options.partition}:iam::${options.accountId}:root` },
        Action: [...KEY_ADMIN_ACTIONS],
        Resource: "*",
      },
      {
        Sid: "OnlyTheDeployingRolesSign",
        Effect: "Allow",
        Principal: { AWS: [...options.signerRoleArns] },
        Action: [...SIGNER_ACTIONS],
        Resource: "*",
      },
    ],
  });
}
