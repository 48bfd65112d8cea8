/**
 * ECR repository policy as data (issue #2): which tags may be overwritten and which images expire.
 * Pure, so the policy pack and tests read the same values the program sets.
 */

/** Tags every build gets: `build-<content hash>`. */
export const BUILD_TAG_PREFIX = "build-";
/** Tags that mark an image offered to users (dev) or copied in by promotion (prod); never expired. */
export const RELEASE_TAG_PREFIX = "release-";
export const PROMOTED_TAG_PREFIX = "promoted-";
/** BuildKit's registry cache lives under this tag and is overwritten by every build. */
export const CACHE_TAG = "buildcache";

/**
 * Tags allowed to be overwritten in an otherwise immutable repository: cosign's signature, attestation and SBOM
 * tags (`sha256-<digest>.sig|.att|.sbom`, rewritten when a digest is signed again) and the build cache. Nothing a
 * user pulls by tag is mutable.
 */
export const MUTABLE_TAG_FILTERS = [
  { filterType: "WILDCARD", filter: "sha256-*" },
  { filterType: "WILDCARD", filter: `${CACHE_TAG}*` },
] as const;

export interface LifecycleSettings {
  keepTagged: number;
  untaggedExpireDays: number;
}

/**
 * The count a protecting rule selects images beyond. A count rule expires only the images past its newest
 * `countNumber`, so it protects every image its patterns match until more than this many do. AWS documents no upper
 * limit for `countNumber` (a positive integer: "Lifecycle policy properties", countNumber), so it is set to the
 * documented default quota of images per repository, 100,000 ("Amazon ECR service quotas"): a repository at the
 * default quota cannot hold more images in all, let alone more release images. A count is chosen over an age
 * (`sinceImagePushed`) because no amount of time passing can make it fire.
 *   https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html
 *   https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html
 */
export const KEEP_FOREVER_COUNT = 100000;

/** The tag patterns whose images are never expired, one rule each. */
export const PROTECTED_TAG_PATTERNS = [`${RELEASE_TAG_PREFIX}*`, `${PROMOTED_TAG_PREFIX}*`] as const;

/** One rule of an ECR lifecycle policy, as the JSON document spells it. */
export interface LifecycleRule {
  rulePriority: number;
  description: string;
  selection:
    | { tagStatus: "tagged"; tagPatternList: string[]; countType: "imageCountMoreThan"; countNumber: number }
    | { tagStatus: "untagged"; countType: "sinceImagePushed"; countUnit: "days"; countNumber: number };
  action: { type: "expire" };
}

/**
 * The lifecycle rules (issue #12), per "Lifecycle policy evaluation rules" in the ECR User Guide
 * (https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html):
 * - "If you specify multiple tags, only the images with all specified tags are selected" (tagPatternList is an AND),
 *   so each protected pattern gets a rule of its own: one rule for release-* and promoted-* would select only images
 *   carrying both, i.e. almost none.
 * - "An image that matches the tagging requirements of a rule cannot be expired ... by a rule with a lower
 *   priority", so the protecting rules come first. A release image also carries its `build-*` tag; rule 1 claims it
 *   before the count rule can. Protected images still count towards the count rule's newest `keepTagged` ("Rules
 *   can never mark images that are marked by higher priority rules, but can still identify them").
 * - Untagged images are the per-platform manifests of our multi-platform indexes, superseded cache manifests and
 *   failed pushes. "If an image is referenced by a manifest list, it cannot be expired ... without the manifest list
 *   being deleted ... first", so no child of a kept index expires by age. The rule selects by age (not count) so a
 *   burst of pushes cannot expire a child before its index is written.
 * - "When reference artifacts are present in a repository, Amazon ECR lifecycle policies automatically expire ...
 *   those artifacts within 24 hours of the deletion ... of the subject image." The docs do not exempt an untagged
 *   referrer (OCI 1.1 `subject`) from an untagged rule, though: signatures and attestations must stay tags. Ours do
 *   (cosign's `sha256-<digest>.sig|.att`); those tags, like `buildcache`, match no rule and are never expired.
 */
export function ecrLifecycleRules(settings: LifecycleSettings): LifecycleRule[] {
  return [
    ...PROTECTED_TAG_PATTERNS.map(
      (pattern, i): LifecycleRule => ({
        rulePriority: i + 1,
        description: `Never expire ${pattern} images (selects beyond ${KEEP_FOREVER_COUNT}, the images-per-repository quota)`,
        selection: { tagStatus: "tagged", tagPatternList: [pattern], countType: "imageCountMoreThan", countNumber: KEEP_FOREVER_COUNT },
        action: { type: "expire" },
      }),
    ),
    {
      rulePriority: PROTECTED_TAG_PATTERNS.length + 1,
      description: `Keep the ${settings.keepTagged} newest builds (${BUILD_TAG_PREFIX}*); release and promoted images are never expired`,
      selection: { tagStatus: "tagged", tagPatternList: [`${BUILD_TAG_PREFIX}*`], countType: "imageCountMoreThan", countNumber: settings.keepTagged },
      action: { type: "expire" },
    },
    {
      rulePriority: PROTECTED_TAG_PATTERNS.length + 2,
      description: `Expire untagged manifests after ${settings.untaggedExpireDays} day(s); children of a kept index are never expired`,
      selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: settings.untaggedExpireDays },
      action: { type: "expire" },
    },
  ];
}

/** The lifecycle policy document for `aws.ecr.LifecyclePolicy`. */
export function ecrLifecyclePolicy(settings: LifecycleSettings): string {
  return JSON.stringify({ rules: ecrLifecycleRules(settings) });
}

/** What another account needs to pull an image (ECR User Guide, "Private repository policy examples"). */
export const PULL_ACTIONS = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"] as const;

/**
 * A repository policy letting other accounts pull (never push): prod's account reads the digests dev validated when
 * it promotes them. Empty when no account is named.
 */
export function crossAccountPullPolicy(accountIds: readonly string[]): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "PullForPromotion",
        Effect: "Allow",
        Principal: { AWS: [...accountIds].sort().map((id) => `arn:aws:iam::${id}:root`) },
        Action: [...PULL_ACTIONS],
      },
    ],
  });
}
