import * as kms from "@pulumi/aws/kms";
import * as pulumi from "@pulumi/pulumi";
import { cosignKmsKeyRef, signingKeyPolicy } from "./cosign";

const ROLE_ARN = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/.+$/;

export interface SigningKeyArgs {
  /** `alias/<name>` (signing.keyAlias). */
  keyAlias: string;
  /** IAM roles allowed to sign: the role(s) that run `pulumi up` (signing.signerRoleArns). Nobody else may sign. */
  signerRoleArns: string[];
  /** The AWS account that owns the key (registry.accountId); its root principal keeps key administration. */
  accountId: string;
  /**
   * Protect the key and its alias, and keep them in AWS when they leave the program (prod): every published
   * signature is only as good as this key.
   * @default false
   */
  protect?: boolean;
  /**
   * Days KMS waits before deleting a key scheduled for deletion; the whole window can still cancel it.
   * @default 30 (the maximum)
   */
  deletionWindowInDays?: number;
}

/**
 * The stack's cosign signing key (issue #4): an asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY) with an alias and a
 * key policy under which only the signer roles sign and the account only administers.
 */
export class SigningKey extends pulumi.ComponentResource {
  readonly key: kms.Key;
  readonly alias: kms.Alias;
  readonly keyArn: pulumi.Output<string>;
  /** `alias/<name>`. */
  readonly aliasName: pulumi.Output<string>;
  /**
   * `awskms:///<key ARN>`: the ARN names one key in one account and region, where an alias is resolved in whatever
   * account and region the caller's AWS configuration points at. (sigstore's AWS client still needs AWS_REGION to
   * reach KMS; SigningPolicy sets it from this ARN.)
   */
  readonly cosignKeyRef: pulumi.Output<string>;
  /** The public key, PEM: what Kyverno and `cosign verify --key cosign.pub` check signatures against. */
  readonly publicKeyPem: pulumi.Output<string>;

  constructor(name: string, args: SigningKeyArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:signing:SigningKey", name, {}, opts);
    const problems: string[] = [];
    if (!/^alias\/[A-Za-z0-9/_-]+$/.test(args.keyAlias) || args.keyAlias.startsWith("alias/aws/")) {
      problems.push(`args.keyAlias must be "alias/<name>" of letters, digits, '/', '_' and '-' and not under alias/aws/, got ${JSON.stringify(args.keyAlias)}.`);
    }
    if (!/^\d{12}$/.test(args.accountId)) problems.push(`args.accountId must be a 12-digit AWS account id, got ${JSON.stringify(args.accountId)}.`);
    if (args.signerRoleArns.length === 0) problems.push("args.signerRoleArns is empty: name the role that runs `pulumi up`, or nobody could sign.");
    const partitions = new Set<string>();
    args.signerRoleArns.forEach((arn, i) => {
      const m = ROLE_ARN.exec(arn);
      if (!m) problems.push(`args.signerRoleArns[${i}] must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got ${JSON.stringify(arn)}.`);
      else partitions.add(m[1]!);
    });
    if (partitions.size > 1) problems.push(`args.signerRoleArns mixes AWS partitions (${[...partitions].sort().join(", ")}): a key lives in one.`);
    const window = args.deletionWindowInDays ?? 30;
    if (!Number.isInteger(window) || window < 7 || window > 30) {
      problems.push(`args.deletionWindowInDays must be a whole number from 7 to 30 (KMS limits), got ${window}.`);
    }
    if (problems.length > 0) throw new pulumi.ResourceError(`SigningKey "${name}": ${problems.join(" ")}`, this);

    const partition = [...partitions][0] ?? "aws";
    const protect = args.protect ?? false;
    this.key = new kms.Key(
      `${name}-key`,
      {
        description: `cosign signing key for workbench images (${args.keyAlias})`,
        customerMasterKeySpec: "ECC_NIST_P256",
        keyUsage: "SIGN_VERIFY",
        // KMS rotates only symmetric keys automatically; an asymmetric key is rotated by hand (docs/supply-chain.md).
        enableKeyRotation: false,
        deletionWindowInDays: window,
        policy: signingKeyPolicy({ accountId: args.accountId, partition, signerRoleArns: args.signerRoleArns }),
        tags: { "workbench-images/purpose": "cosign-signing" },
      },
      { parent: this, protect, retainOnDelete: protect },
    );
    this.alias = new kms.Alias(
      `${name}-alias`,
      { name: args.keyAlias, targetKeyId: this.key.keyId },
      { parent: this, protect, retainOnDelete: protect },
    );
    this.keyArn = this.key.arn;
    this.aliasName = this.alias.name;
    this.cosignKeyRef = this.key.arn.apply(cosignKmsKeyRef);
    this.publicKeyPem = kms.getPublicKeyOutput({ keyId: this.key.arn }, { parent: this }).publicKeyPem;
    this.registerOutputs({ keyArn: this.keyArn, aliasName: this.aliasName, cosignKeyRef: this.cosignKeyRef, publicKeyPem: this.publicKeyPem });
  }
}
