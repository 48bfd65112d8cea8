/**
 * The ECR lifecycle policy (issue #12, point 1) against AWS's documented evaluation rules, encoded below as a small
 * evaluator. Every rule of the evaluator quotes the page it comes from:
 *   [LP]  https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html
 *         ("Lifecycle policy evaluation rules")
 *   [LPP] https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html
 *   [SQ]  https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html
 * The evaluator is an oracle for what ECR does, not a copy of our policy code: it reads the policy JSON the program
 * sets and is checked on the policy this project shipped before, which it must fail.
 */
import { describe, expect, it } from "vitest";
import {
  ecrLifecyclePolicy,
  ecrLifecycleRules,
  KEEP_FOREVER_COUNT,
  MUTABLE_TAG_FILTERS,
  type LifecycleSettings,
} from "../../../components/registry/ecr";
import { runUnderMocks } from "../build/mock-program";
import { RegistryRepository } from "../../../components/registry/registry-repository";

// ---------------------------------------------------------------------------------------------------------------
// The evaluator
// ---------------------------------------------------------------------------------------------------------------

interface Selection {
  tagStatus: "tagged" | "untagged" | "any";
  tagPatternList?: string[];
  tagPrefixList?: string[];
  countType: "imageCountMoreThan" | "sinceImagePushed";
  countUnit?: "days";
  countNumber: number;
}
interface Rule {
  rulePriority: number;
  description?: string;
  selection: Selection;
  action: { type: "expire" };
}
interface Policy {
  rules: Rule[];
}

/** One image in a repository: an image index, a per-platform manifest, a cache manifest or a referrer. */
interface Image {
  digest: string;
  tags: string[];
  /** Push time in days since an epoch. */
  pushedAt: number;
  /** Manifests an image index (manifest list) references. */
  manifests?: string[];
  /** A referrer's subject (OCI 1.1 `subject`), e.g. a signature or attestation pushed by reference. */
  subject?: string;
}

/** The structural rules a policy must satisfy before ECR accepts it. */
function policyProblems(policy: Policy, text: string): string[] {
  const problems: string[] = [];
  const priorities = policy.rules.map((r) => r.rulePriority);
  // [LPP] rulePriority: "you must give them each a unique value for rulePriority".
  if (new Set(priorities).size !== priorities.length) problems.push("rulePriority values are not unique");
  // [LP] "Only one rule ... is allowed to select untagged images."
  if (policy.rules.filter((r) => r.selection.tagStatus === "untagged").length > 1) problems.push("more than one untagged rule");
  // [LPP] "A rule with a tagStatus value of any must have the highest value for rulePriority".
  const any = policy.rules.filter((r) => r.selection.tagStatus === "any");
  if (any.some((r) => r.rulePriority !== Math.max(...priorities))) problems.push("an `any` rule is not last");
  const patterns: string[] = [];
  for (const r of policy.rules) {
    const s = r.selection;
    // [LP] "A lifecycle policy rule may specify either tagPatternList or tagPrefixList, but not both" and they "may
    // only [be] used if the tagStatus is tagged"; [LPP] tagged requires one of them.
    if (s.tagPatternList && s.tagPrefixList) problems.push(`rule ${r.rulePriority}: both pattern and prefix lists`);
    if (s.tagStatus === "tagged" && !s.tagPatternList && !s.tagPrefixList) problems.push(`rule ${r.rulePriority}: tagged without tags`);
    if (s.tagStatus !== "tagged" && (s.tagPatternList || s.tagPrefixList)) problems.push(`rule ${r.rulePriority}: tags on a ${s.tagStatus} rule`);
    // [LP] "There is a maximum limit of four wildcards (*) per string."
    for (const p of s.tagPatternList ?? []) if ((p.match(/\*/g) ?? []).length > 4) problems.push(`rule ${r.rulePriority}: ${p} has > 4 wildcards`);
    patterns.push(...(s.tagPatternList ?? []), ...(s.tagPrefixList ?? []));
    // [LP] "The countUnit parameter is only used if countType is sinceImagePushed" (or the archive count types).
    if ((s.countUnit !== undefined) !== (s.countType === "sinceImagePushed")) problems.push(`rule ${r.rulePriority}: countUnit misuse`);
    // [LPP] countNumber: "Acceptable values are positive integers (0 is not an accepted value)."
    if (!Number.isInteger(s.countNumber) || s.countNumber < 1) problems.push(`rule ${r.rulePriority}: countNumber ${s.countNumber}`);
    if (r.action.type !== "expire") problems.push(`rule ${r.rulePriority}: action ${r.action.type}`);
  }
  // [LP] "The set of all rules selecting a specific storage class must contain a unique set of prefixes."
  if (new Set(patterns).size !== patterns.length) problems.push("tag patterns are not unique across rules");
  // [SQ] "Lifecycle policy length: 30,720" characters.
  if (text.length > 30720) problems.push("policy longer than 30,720 characters");
  return problems;
}

/** [LP] tagPatternList: `*` is the only wildcard ("prod*" matches prod, prod1, production-team1). */
function wildcard(pattern: string): RegExp {
  return new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
}

/** Whether an image meets a rule's tagging requirements (tag status and tag lists), count aside. */
function matchesTagging(s: Selection, image: Image): boolean {
  if (s.tagStatus === "untagged") return image.tags.length === 0;
  if (s.tagStatus === "any") return true;
  if (image.tags.length === 0) return false;
  // [LPP] "If you specify multiple tags, only the images with all specified tags are selected." [LP] "An image is
  // successfully matched if all of the tags in the tagPatternList or tagPrefixList value are matched against any of
  // the image's tags."
  if (s.tagPatternList) return s.tagPatternList.every((p) => image.tags.some((t) => wildcard(p).test(t)));
  return (s.tagPrefixList ?? []).every((p) => image.tags.some((t) => t.startsWith(p)));
}

/** One run of the lifecycle evaluator at time `now`: the digests it expires. */
function evaluate(policy: Policy, images: readonly Image[], now: number): Set<string> {
  // [LP] "If an image is referenced by a manifest list, it cannot be expired ... without the manifest list being
  // deleted ... first."
  const referenced = new Set(images.flatMap((i) => i.manifests ?? []));
  // [LP] "All rules are evaluated at the same time, regardless of rule priority. After all rules are evaluated, they
  // are then applied based on rule priority." (A lower number is a higher priority.)
  const rules = [...policy.rules].sort((a, b) => a.rulePriority - b.rulePriority);
  const marked = rules.map((rule) => {
    const s = rule.selection;
    const tagged = images.filter((i) => matchesTagging(s, i));
    if (s.countType === "imageCountMoreThan") {
      // [LP] "images are sorted from youngest to oldest based on pushed_at_time and then all images greater than the
      // specified count are expired." "Rules can never mark images that are marked by higher priority rules, but can
      // still identify them as if they haven't been expired": protected images still take a place in the count.
      const sorted = [...tagged].sort((a, b) => b.pushedAt - a.pushedAt || (a.digest < b.digest ? -1 : 1));
      return { rule, tagged, selected: sorted.slice(s.countNumber) };
    }
    // [LP] "all images whose pushed_at_time is older than the specified number of days based on countNumber".
    return { rule, tagged, selected: tagged.filter((i) => now - i.pushedAt > s.countNumber) };
  });
  const claimed = new Set<string>();
  const expired = new Set<string>();
  for (const { tagged, selected } of marked) {
    for (const image of selected) {
      // [LP] "An image that matches the tagging requirements of a rule cannot be expired ... by a rule with a lower
      // priority." "An image is expired ... by exactly one or zero rules."
      if (claimed.has(image.digest) || expired.has(image.digest) || referenced.has(image.digest)) continue;
      expired.add(image.digest);
    }
    for (const image of tagged) claimed.add(image.digest);
  }
  return expired;
}

/**
 * Runs the lifecycle daily from `from` to `to` (inclusive) and returns what is left. [LP] "When reference artifacts
 * are present in a repository, Amazon ECR lifecycle policies automatically expire ... those artifacts within 24 hours
 * of the deletion ... of the subject image."
 */
function runDaily(policy: Policy, images: readonly Image[], from: number, to: number): Image[] {
  let left = [...images];
  for (let day = from; day <= to; day++) {
    const expired = evaluate(policy, left, day);
    left = left.filter((i) => !expired.has(i.digest));
    const present = new Set(left.map((i) => i.digest));
    left = left.filter((i) => i.subject === undefined || present.has(i.subject));
  }
  return left;
}

// ---------------------------------------------------------------------------------------------------------------
// Repositories as our pipeline fills them
// ---------------------------------------------------------------------------------------------------------------

/** A multi-platform build: a tagged image index and its two untagged per-platform manifests, pushed together. */
function build(id: string, pushedAt: number, tags: string[]): Image[] {
  const children = [`${id}-amd64`, `${id}-arm64`];
  return [
    { digest: `${id}-index`, tags, pushedAt, manifests: children },
    ...children.map((digest) => ({ digest, tags: [], pushedAt })),
  ];
}

/** Cosign's signature and attestations as this project stores them: tags `sha256-<digest>.sig` and `.att`. */
function signatures(id: string, pushedAt: number): Image[] {
  return [
    { digest: `${id}-sig`, tags: [`sha256-${id}.sig`], pushedAt },
    { digest: `${id}-att`, tags: [`sha256-${id}.att`], pushedAt },
  ];
}

const SETTINGS: LifecycleSettings = { keepTagged: 30, untaggedExpireDays: 1 };
const POLICY_TEXT = ecrLifecyclePolicy(SETTINGS);
const POLICY = JSON.parse(POLICY_TEXT) as Policy;

/** The policy this project shipped before issue #12, verbatim: one protecting rule listing both patterns. */
const OLD_POLICY: Policy = {
  rules: [
    {
      rulePriority: 1,
      description: "Never expire images that are published (release-*) or promoted (promoted-*)",
      selection: { tagStatus: "tagged", tagPatternList: ["release-*", "promoted-*"], countType: "imageCountMoreThan", countNumber: 100000 },
      action: { type: "expire" },
    },
    {
      rulePriority: 2,
      description: "Expire untagged manifests after 1 day(s)",
      selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 1 },
      action: { type: "expire" },
    },
    {
      rulePriority: 3,
      description: "Keep the 30 newest builds (build-*)",
      selection: { tagStatus: "tagged", tagPatternList: ["build-*"], countType: "imageCountMoreThan", countNumber: 30 },
      action: { type: "expire" },
    },
  ],
};

/**
 * A dev repository: an image released on day 0 (it keeps its build tag), a promoted copy (prod's tag; both tags
 * live in one policy), an old unreleased build on day 1, then `newer` builds, ten a day, each signed.
 */
function repository(newer: number): Image[] {
  const images = [
    ...build("released", 0, ["build-released", "release-0123456789ab"]),
    ...signatures("released", 0),
    ...build("promoted", 0, ["promoted-0123456789ab"]),
    ...build("old-build", 1, ["build-old"]),
    // An artifact pushed by reference (OCI 1.1 `subject`), e.g. by another signing tool.
    { digest: "old-build-referrer", tags: [], pushedAt: 1, subject: "old-build-index" },
    { digest: "cache", tags: ["buildcache"], pushedAt: 1 },
  ];
  for (let i = 0; i < newer; i++) images.push(...build(`b${i}`, 2 + i / 10, [`build-${i}`]));
  return images;
}

const digests = (images: readonly Image[]) => new Set(images.map((i) => i.digest));

// ---------------------------------------------------------------------------------------------------------------

describe("the ECR lifecycle policy (issue #12)", () => {
  it("is exactly one rule per protected pattern, then the build count, then untagged by age", () => {
    expect(POLICY).toEqual({
      rules: [
        {
          rulePriority: 1,
          description: "Never expire release-* images (selects beyond 100000, the images-per-repository quota)",
          selection: { tagStatus: "tagged", tagPatternList: ["release-*"], countType: "imageCountMoreThan", countNumber: 100000 },
          action: { type: "expire" },
        },
        {
          rulePriority: 2,
          description: "Never expire promoted-* images (selects beyond 100000, the images-per-repository quota)",
          selection: { tagStatus: "tagged", tagPatternList: ["promoted-*"], countType: "imageCountMoreThan", countNumber: 100000 },
          action: { type: "expire" },
        },
        {
          rulePriority: 3,
          description: "Keep the 30 newest builds (build-*); release and promoted images are never expired",
          selection: { tagStatus: "tagged", tagPatternList: ["build-*"], countType: "imageCountMoreThan", countNumber: 30 },
          action: { type: "expire" },
        },
        {
          rulePriority: 4,
          description: "Expire untagged manifests after 1 day(s); children of a kept index are never expired",
          selection: { tagStatus: "untagged", countType: "sinceImagePushed", countUnit: "days", countNumber: 1 },
          action: { type: "expire" },
        },
      ],
    });
    expect(ecrLifecycleRules(SETTINGS)).toEqual(POLICY.rules);
    expect(KEEP_FOREVER_COUNT).toBe(100000);
  });

  it("passes ECR's structural rules for any allowed setting", () => {
    for (const settings of [SETTINGS, { keepTagged: 1, untaggedExpireDays: 1 }, { keepTagged: 10000, untaggedExpireDays: 3650 }]) {
      const text = ecrLifecyclePolicy(settings);
      expect(policyProblems(JSON.parse(text) as Policy, text)).toEqual([]);
    }
  });

  it("keeps release and promoted images, their platform manifests and signatures through 10,000 newer builds", () => {
    const left = runDaily(POLICY, repository(10000), 1002, 1010);
    const kept = digests(left);
    for (const id of ["released", "promoted"]) {
      for (const d of [`${id}-index`, `${id}-amd64`, `${id}-arm64`]) expect(kept.has(d), d).toBe(true);
    }
    expect(kept.has("released-sig")).toBe(true);
    expect(kept.has("released-att")).toBe(true);
    expect(kept.has("cache")).toBe(true);
    // And years later.
    expect(digests(runDaily(POLICY, left, 4000, 4001))).toEqual(kept);
  });

  it("still expires build-only images by count, platform manifests after their index", () => {
    const left = runDaily(POLICY, repository(10000), 1002, 1010);
    const kept = digests(left);
    for (const d of ["old-build-index", "old-build-amd64", "old-build-arm64", "old-build-referrer", "b0-index", "b0-amd64", "b9969-index"]) {
      expect(kept.has(d), d).toBe(false);
    }
    // The 30 newest builds remain, each with its platform manifests; no other build tag does but the released one.
    const builds = left.filter((i) => i.tags.some((t) => t.startsWith("build-"))).map((i) => i.digest);
    expect(builds.sort()).toEqual(["released-index", ...Array.from({ length: 30 }, (_, k) => `b${9970 + k}-index`)].sort());
    for (let k = 9970; k < 10000; k++) expect(kept.has(`b${k}-amd64`) && kept.has(`b${k}-arm64`)).toBe(true);
    expect(left).toHaveLength(3 * 30 + 3 + 2 + 3 + 1);
  });

  it("counts protected images among the newest builds, as ECR does", () => {
    // A release among the newest takes one of the keepTagged places; it is kept by rule 1 either way.
    const images = [...build("a", 1, ["build-a"]), ...build("b", 2, ["build-b"]), ...build("r", 3, ["build-r", "release-r"])];
    const left = digests(runDaily(JSON.parse(ecrLifecyclePolicy({ keepTagged: 2, untaggedExpireDays: 1 })) as Policy, images, 10, 12));
    expect([...left].filter((d) => d.endsWith("-index")).sort()).toEqual(["b-index", "r-index"]);
  });

  it("fails the policy shipped before issue #12 (so this test can fail)", () => {
    // All patterns in one rule must all match: a release-only image is not protected by it.
    expect(matchesTagging(OLD_POLICY.rules[0]!.selection, { digest: "x", tags: ["build-x", "release-x"], pushedAt: 0 })).toBe(false);
    const left = digests(runDaily(OLD_POLICY, repository(10000), 1002, 1010));
    expect(left.has("released-index")).toBe(false);
    expect(left.has("released-amd64")).toBe(false);
    expect(left.has("released-arm64")).toBe(false);
    // The promoted-only image carries no build tag, so the old policy happened to keep it.
    expect(left.has("promoted-index")).toBe(true);
  });

  it("lets a higher-priority rule shield an image from a lower one, and only then", () => {
    const image: Image = { digest: "r", tags: ["build-r", "release-r"], pushedAt: 0 };
    const countAll = (priority: number): Rule => ({
      rulePriority: priority,
      selection: { tagStatus: "tagged", tagPatternList: ["build-*"], countType: "imageCountMoreThan", countNumber: 1 },
      action: { type: "expire" },
    });
    const newer: Image = { digest: "n", tags: ["build-n"], pushedAt: 1 };
    const protect = (priority: number): Rule => ({
      rulePriority: priority,
      selection: { tagStatus: "tagged", tagPatternList: ["release-*"], countType: "imageCountMoreThan", countNumber: 100 },
      action: { type: "expire" },
    });
    expect(evaluate({ rules: [protect(1), countAll(2)] }, [image, newer], 5)).toEqual(new Set());
    expect(evaluate({ rules: [protect(2), countAll(1)] }, [image, newer], 5)).toEqual(new Set(["r"]));
  });

  it("never selects cosign's signature tags or the build cache, which stay mutable instead", () => {
    for (const rule of POLICY.rules) {
      for (const tag of ["sha256-abc.sig", "sha256-abc.att", "buildcache"]) {
        expect(matchesTagging(rule.selection, { digest: "x", tags: [tag], pushedAt: 0 })).toBe(false);
      }
    }
    expect(MUTABLE_TAG_FILTERS.map((f) => f.filter)).toEqual(["sha256-*", "buildcache*"]);
  });
});

describe("RegistryRepository on ECR (under mocks)", () => {
  it("attaches exactly this policy to the repository", async () => {
    const seen = await runUnderMocks(false, () => {
      new RegistryRepository("app-repository", {
        repositoryName: "wb/app",
        registry: {
          kind: "ecr",
          region: "eu-west-1",
          accountId: "111122223333",
          repositoryPrefix: "wb",
          lifecycle: { keepTagged: 12, untaggedExpireDays: 3 },
          forceDelete: false,
          pullAccountIds: [],
        },
      });
    });
    const policies = seen.filter((r) => r.type === "aws:ecr/lifecyclePolicy:LifecyclePolicy");
    expect(policies.map((p) => [p.name, p.inputs])).toEqual([
      ["app-repository-lifecycle", { repository: "wb/app", policy: ecrLifecyclePolicy({ keepTagged: 12, untaggedExpireDays: 3 }) }],
    ]);
  });
});
