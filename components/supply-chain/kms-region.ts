import * as pulumi from "@pulumi/pulumi";
import { asOutput } from "../../lib/outputs";
import { kmsRegionFromKeyRef } from "./cosign";

const regions = new WeakMap<object, pulumi.Output<string>>();

/**
 * AWS_REGION for a cosign command that signs with `keyRef` (`awskms:///arn:aws:kms:<region>:…`): sigstore's AWS KMS
 * client takes the region from the SDK's configuration, never from the key ARN, so the caller's default region (or
 * none) would send the request to the wrong KMS endpoint. One Output per key reference Output, shared by every command
 * that signs or attests with it (issue #16: two applies per image fewer); a plain reference is checked at once.
 */
export function kmsRegionOf(keyRef: pulumi.Input<string>): pulumi.Output<string> {
  const shared = typeof keyRef === "object" && keyRef !== null;
  const cached = shared ? regions.get(keyRef) : undefined;
  if (cached !== undefined) return cached;
  const region = asOutput(keyRef).apply((k) => {
    const r = kmsRegionFromKeyRef(k);
    if (r === undefined) {
      throw new Error(`signing keyRef must be a key ARN reference (awskms:///arn:aws:kms:<region>:<account>:key/<id>), got ${JSON.stringify(k)}. Pass the SigningKey's cosignKeyRef.`);
    }
    return r;
  });
  if (shared) regions.set(keyRef, region);
  return region;
}
