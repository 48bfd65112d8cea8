import { unknownCheckingProxy, UnknownValueError } from "@pulumi/policy";
import { describe, expect, it } from "vitest";
import { MUTABLE_TAG_FILTERS } from "../../components/registry/ecr";
import { plainProps, policies, validateWith } from "../../policy/policies";
import {
  ALLOWED_MUTABLE_TAG_FILTERS,
  checkEcrImmutableTags,
  checkEcrKmsEncryption,
  checkEcrScanOnPush,
  checkHelmValuesImagesPinned,
  checkHelmValuesNoPlaintextSecrets,
  checkJobBounded,
  checkWorkloadImagesPinned,
  formatPath,
  isSecretKey,
  keyWords,
  POLICY_NAMES,
  show,
  UNKNOWN_VALUES,
} from "../../policy/rules";
import {
  BACKOFF_TAIL,
  CHART,
  DEADLINE_TAIL,
  DIGEST,
  ECR,
  ecrRepository,
  FILTER_TAIL,
  HEX,
  KMS_FIX,
  MUTABILITY_FIX,
  OBJECT_PIN_FIX,
  PIN_FIX,
  PINNED,
  podSpec,
  RELEASE,
  SECRET_TAIL,
  UNKNOWN,
} from "./policy-cases";

// Never imported here: policy/index.ts, whose `new PolicyPack(...)` starts a gRPC server (policy.real.test.ts runs it
// in a child process, as the Pulumi CLI does).

describe("helpers", () => {
  it("formats value paths with brackets for indexes and non-identifier keys", () => {
    expect(formatPath(["values", "singleuser", "profileList", 1, "kubespawner_override", "image"])).toBe(
      "values.singleuser.profileList[1].kubespawner_override.image",
    );
    expect(formatPath(["values", "limits", "nvidia.com/gpu"])).toBe('values.limits["nvidia.com/gpu"]');
    expect(formatPath(["values", "choices", "a100-80gb", "x"])).toBe('values.choices["a100-80gb"].x');
  });

  it("shows missing values as `missing` and cuts long JSON at 120 characters", () => {
    expect(show(undefined)).toBe("missing");
    expect(show(null)).toBe("null");
    expect(show("MUTABLE")).toBe('"MUTABLE"');
    const long = show("x".repeat(200));
    expect(long).toBe(`"${"x".repeat(118)}…`);
    expect(long).toHaveLength(120);
  });

  it("recognizes every unknown sentinel exactly as @pulumi/policy's proxy does", () => {
    expect(UNKNOWN_VALUES.size).toBe(7);
    for (const sentinel of UNKNOWN_VALUES) {
      const props = unknownCheckingProxy({ field: sentinel }) as Record<string, unknown>;
      expect(() => props["field"]).toThrow(UnknownValueError);
    }
    const known = unknownCheckingProxy({ field: "04da6b54-80e4-46f7-96ec-b56ff0331ba8" }) as Record<string, unknown>;
    expect(known["field"]).toBe("04da6b54-80e4-46f7-96ec-b56ff0331ba8");
  });
});

describe("pack wiring (policy/policies.ts)", () => {
  it("registers the seven rules by name, all mandatory, each validating by resource type", () => {
    expect(policies.map((p) => p.name)).toEqual([
      "ecr-immutable-tags",
      "ecr-scan-on-push",
      "ecr-kms-encryption",
      "workload-images-pinned-by-digest",
      "helm-values-images-pinned-by-digest",
      "job-backoff-limit-and-deadline",
      "helm-values-no-plaintext-secrets",
    ]);
    expect(Object.values(POLICY_NAMES)).toEqual(policies.map((p) => p.name));
    expect(policies.every((p) => p.enforcementLevel === "mandatory")).toBe(true);
    expect(policies.every((p) => typeof p.validateResource === "function")).toBe(true);
  });

  it("unwraps the SDK's unknown-checking proxy so one unknown value does not abort the whole check", () => {
    const raw = { spec: { containers: [{ name: "a", image: UNKNOWN }, { name: "b", image: "busybox:1.36" }] } };
    const proxied = unknownCheckingProxy(raw) as Record<string, unknown>;
    expect(plainProps(proxied)).toBe(raw);
    expect(plainProps(raw)).toBe(raw);

    const reported: string[] = [];
    const validate = validateWith(checkWorkloadImagesPinned);
    void validate(
      { type: "kubernetes:core/v1:Pod", props: proxied, urn: "urn:x", name: "p" } as Parameters<typeof validate>[0],
      (message: string) => reported.push(message),
    );
    expect(reported).toEqual([`spec.containers[1].image (container "b") is "busybox:1.36": ${PIN_FIX}`]);
  });

  it("reports nothing for resource types a rule does not cover", () => {
    const reported: string[] = [];
    const validate = validateWith(checkEcrScanOnPush);
    void validate(
      { type: "aws:s3/bucket:Bucket", props: {}, urn: "urn:x", name: "b" } as Parameters<typeof validate>[0],
      (message: string) => reported.push(message),
    );
    expect(reported).toEqual([]);
  });
});

describe(POLICY_NAMES.ecrImmutableTags, () => {
  it("accepts what the program registers: IMMUTABLE_WITH_EXCLUSION for signature and cache tags", () => {
    expect(checkEcrImmutableTags(ECR, ecrRepository())).toEqual([]);
  });

  it("accepts the exclusion filters the program takes from components/registry/ecr.ts", () => {
    const props = { imageTagMutability: "IMMUTABLE_WITH_EXCLUSION", imageTagMutabilityExclusionFilters: MUTABLE_TAG_FILTERS };
    expect(MUTABLE_TAG_FILTERS.length).toBeGreaterThan(0);
    expect(checkEcrImmutableTags(ECR, props)).toEqual([]);
  });

  it("accepts IMMUTABLE without filters and every allowed filter", () => {
    expect(checkEcrImmutableTags(ECR, ecrRepository({ imageTagMutability: "IMMUTABLE", imageTagMutabilityExclusionFilters: undefined }))).toEqual([]);
    expect(checkEcrImmutableTags(ECR, ecrRepository({ imageTagMutability: "IMMUTABLE", imageTagMutabilityExclusionFilters: [] }))).toEqual([]);
    const all = ALLOWED_MUTABLE_TAG_FILTERS.map((filter) => ({ filterType: "WILDCARD", filter }));
    expect(all).toHaveLength(7);
    expect(checkEcrImmutableTags(ECR, ecrRepository({ imageTagMutabilityExclusionFilters: all }))).toEqual([]);
  });

  it("rejects MUTABLE, MUTABLE_WITH_EXCLUSION and a missing setting", () => {
    expect(checkEcrImmutableTags(ECR, ecrRepository({ imageTagMutability: "MUTABLE" }))).toEqual([
      `imageTagMutability is "MUTABLE": a pushed tag can be moved to another image; ${MUTABILITY_FIX}`,
    ]);
    expect(checkEcrImmutableTags(ECR, ecrRepository({ imageTagMutability: "MUTABLE_WITH_EXCLUSION" }))).toEqual([
      `imageTagMutability is "MUTABLE_WITH_EXCLUSION": a pushed tag can be moved to another image; ${MUTABILITY_FIX}`,
    ]);
    const { imageTagMutability: _dropped, ...withoutMutability } = ecrRepository();
    expect(checkEcrImmutableTags(ECR, withoutMutability)).toEqual([
      `imageTagMutability is missing (ECR's default is MUTABLE): a pushed tag can be moved to another image; ${MUTABILITY_FIX}`,
    ]);
  });

  it("names each exclusion filter outside the signature/cache set", () => {
    const props = ecrRepository({
      imageTagMutabilityExclusionFilters: [
        { filterType: "WILDCARD", filter: "sha256-*" },
        { filterType: "WILDCARD", filter: "latest" },
        { filterType: "WILDCARD", filter: "*" },
        { filterType: "PREFIX", filter: "buildcache" },
        { filterType: "WILDCARD", filter: "buildcache*" },
      ],
    });
    expect(checkEcrImmutableTags(ECR, props)).toEqual([
      `imageTagMutabilityExclusionFilters[1] is {"filterType":"WILDCARD","filter":"latest"}: ${FILTER_TAIL}`,
      `imageTagMutabilityExclusionFilters[2] is {"filterType":"WILDCARD","filter":"*"}: ${FILTER_TAIL}`,
      `imageTagMutabilityExclusionFilters[3] is {"filterType":"PREFIX","filter":"buildcache"}: ${FILTER_TAIL}`,
    ]);
  });

  it("rejects filters on plain IMMUTABLE and filters that are not a list", () => {
    expect(
      checkEcrImmutableTags(ECR, ecrRepository({ imageTagMutability: "IMMUTABLE" })),
    ).toEqual([
      `imageTagMutabilityExclusionFilters has 2 filter(s) but imageTagMutability is "IMMUTABLE": ECR takes exclusion ` +
        `filters only with "IMMUTABLE_WITH_EXCLUSION"; remove them, or ${MUTABILITY_FIX}`,
    ]);
    expect(checkEcrImmutableTags(ECR, ecrRepository({ imageTagMutabilityExclusionFilters: "sha256-*" }))).toEqual([
      `imageTagMutabilityExclusionFilters is "sha256-*", expected a list of {filterType, filter}: ${MUTABILITY_FIX}`,
    ]);
  });

  it("skips values unknown during preview and other resource types", () => {
    expect(checkEcrImmutableTags(ECR, ecrRepository({ imageTagMutability: UNKNOWN }))).toEqual([]);
    expect(
      checkEcrImmutableTags(ECR, ecrRepository({ imageTagMutabilityExclusionFilters: [{ filterType: "WILDCARD", filter: UNKNOWN }] })),
    ).toEqual([]);
    expect(checkEcrImmutableTags("aws:ecr/lifecyclePolicy:LifecyclePolicy", { imageTagMutability: "MUTABLE" })).toEqual([]);
  });
});

describe(POLICY_NAMES.ecrScanOnPush, () => {
  it("accepts scanOnPush: true", () => {
    expect(checkEcrScanOnPush(ECR, ecrRepository())).toEqual([]);
    expect(checkEcrScanOnPush(ECR, ecrRepository({ imageScanningConfiguration: { scanOnPush: UNKNOWN } }))).toEqual([]);
  });

  it("rejects false, a missing flag and a missing block", () => {
    const tail =
      "ECR then does not scan pushed images and the scan gate has no findings to read; set " +
      "imageScanningConfiguration: {scanOnPush: true}";
    expect(checkEcrScanOnPush(ECR, ecrRepository({ imageScanningConfiguration: { scanOnPush: false } }))).toEqual([
      `imageScanningConfiguration.scanOnPush is false: ${tail}`,
    ]);
    expect(checkEcrScanOnPush(ECR, ecrRepository({ imageScanningConfiguration: {} }))).toEqual([
      `imageScanningConfiguration.scanOnPush is missing: ${tail}`,
    ]);
    expect(checkEcrScanOnPush(ECR, ecrRepository({ imageScanningConfiguration: undefined }))).toEqual([
      `imageScanningConfiguration.scanOnPush is missing: ${tail}`,
    ]);
    expect(checkEcrScanOnPush(ECR, ecrRepository({ imageScanningConfiguration: { scanOnPush: "true" } }))).toEqual([
      `imageScanningConfiguration.scanOnPush is "true": ${tail}`,
    ]);
  });
});

describe(POLICY_NAMES.ecrKmsEncryption, () => {
  it("accepts KMS and KMS_DSSE, with the key ARN possibly unknown at preview", () => {
    expect(checkEcrKmsEncryption(ECR, ecrRepository())).toEqual([]);
    expect(checkEcrKmsEncryption(ECR, ecrRepository({ encryptionConfigurations: [{ encryptionType: "KMS_DSSE" }] }))).toEqual([]);
    expect(checkEcrKmsEncryption(ECR, ecrRepository({ encryptionConfigurations: [{ encryptionType: "KMS", kmsKey: UNKNOWN }] }))).toEqual([]);
  });

  it("rejects AES256, a missing type and missing or empty configurations", () => {
    expect(checkEcrKmsEncryption(ECR, ecrRepository({ encryptionConfigurations: [{ encryptionType: "AES256" }] }))).toEqual([
      `encryptionConfigurations[0].encryptionType is "AES256": images must be encrypted with a KMS key; ${KMS_FIX}`,
    ]);
    expect(checkEcrKmsEncryption(ECR, ecrRepository({ encryptionConfigurations: [{ kmsKey: "arn:aws:kms:x" }] }))).toEqual([
      `encryptionConfigurations[0].encryptionType is missing (ECR's default is AES256): images must be encrypted with a KMS key; ${KMS_FIX}`,
    ]);
    expect(checkEcrKmsEncryption(ECR, ecrRepository({ encryptionConfigurations: undefined }))).toEqual([
      `encryptionConfigurations is missing: ECR then encrypts with AES256 (S3-managed keys); ${KMS_FIX}`,
    ]);
    expect(checkEcrKmsEncryption(ECR, ecrRepository({ encryptionConfigurations: [] }))).toEqual([
      `encryptionConfigurations is []: ECR then encrypts with AES256 (S3-managed keys); ${KMS_FIX}`,
    ]);
  });
});

describe(POLICY_NAMES.workloadImagesPinned, () => {
  it("accepts a Pod whose every container is pinned, with or without a tag before the digest", () => {
    const props = {
      spec: {
        containers: [{ name: "main", image: PINNED }],
        initContainers: [{ name: "init", image: `busybox:1.36@${DIGEST}` }],
        ephemeralContainers: [{ name: "debug", image: `busybox@${DIGEST}` }],
      },
    };
    expect(checkWorkloadImagesPinned("kubernetes:core/v1:Pod", props)).toEqual([]);
  });

  it("names the one unpinned container of a multi-container pod", () => {
    expect(checkWorkloadImagesPinned("kubernetes:core/v1:Pod", { spec: podSpec(PINNED, "busybox:1.36", PINNED) })).toEqual([
      `spec.containers[1].image (container "c1") is "busybox:1.36": ${PIN_FIX}`,
    ]);
  });

  it("checks init and ephemeral containers, a missing image, upper-case and short digests", () => {
    const props = {
      spec: {
        template: {
          spec: {
            containers: [{ name: "main", image: `repo@sha256:${HEX.toUpperCase()}` }, { name: "noimage" }],
            initContainers: [{ image: "repo@sha256:abc" }],
            ephemeralContainers: [{ name: "debug", image: "busybox" }],
          },
        },
      },
    };
    expect(checkWorkloadImagesPinned("kubernetes:apps/v1:Deployment", props)).toEqual([
      `spec.template.spec.containers[0].image (container "main") is "repo@sha256:${HEX.toUpperCase()}": ${PIN_FIX}`,
      `spec.template.spec.containers[1].image (container "noimage") is missing: ${PIN_FIX}`,
      `spec.template.spec.initContainers[0].image is "repo@sha256:abc": ${PIN_FIX}`,
      `spec.template.spec.ephemeralContainers[0].image (container "debug") is "busybox": ${PIN_FIX}`,
    ]);
  });

  it("finds the pod spec of every workload kind, CronJob under jobTemplate", () => {
    const template = { template: { spec: podSpec("nginx:1.27") } };
    const cases: [string, Record<string, unknown>, string][] = [
      ["kubernetes:batch/v1:Job", { spec: template }, "spec.template.spec"],
      ["kubernetes:apps/v1:Deployment", { spec: template }, "spec.template.spec"],
      ["kubernetes:apps/v1:StatefulSet", { spec: template }, "spec.template.spec"],
      ["kubernetes:apps/v1:DaemonSet", { spec: template }, "spec.template.spec"],
      ["kubernetes:apps/v1:ReplicaSet", { spec: template }, "spec.template.spec"],
      ["kubernetes:core/v1:ReplicationController", { spec: template }, "spec.template.spec"],
      ["kubernetes:batch/v1:CronJob", { spec: { schedule: "@daily", jobTemplate: { spec: template } } }, "spec.jobTemplate.spec.template.spec"],
    ];
    for (const [type, props, at] of cases) {
      expect(checkWorkloadImagesPinned(type, props), type).toEqual([`${at}.containers[0].image (container "c0") is "nginx:1.27": ${PIN_FIX}`]);
    }
    // A CronJob's pod spec is not at spec.template.spec: an image placed there is not what runs, and not checked.
    expect(checkWorkloadImagesPinned("kubernetes:batch/v1:CronJob", { spec: template })).toEqual([]);
  });

  it("skips unknown images and specs, missing specs and types that are not workloads", () => {
    expect(checkWorkloadImagesPinned("kubernetes:core/v1:Pod", { spec: podSpec(UNKNOWN, PINNED) })).toEqual([]);
    expect(checkWorkloadImagesPinned("kubernetes:apps/v1:Deployment", { spec: { template: UNKNOWN } })).toEqual([]);
    expect(checkWorkloadImagesPinned("kubernetes:apps/v1:Deployment", {})).toEqual([]);
    expect(checkWorkloadImagesPinned("kubernetes:core/v1:ConfigMap", { spec: podSpec("nginx") })).toEqual([]);
  });
});

describe(POLICY_NAMES.helmImagesPinned, () => {
  it("accepts zero-to-jupyterhub values pinned in tag, by name, by digest field, and string profile images", () => {
    const values = {
      hub: { image: { name: "quay.io/jupyterhub/k8s-hub", tag: `4.4.0@${DIGEST}` } },
      proxy: { chp: { image: { name: `quay.io/jupyterhub/configurable-http-proxy@${DIGEST}`, tag: "" } } },
      prePuller: { pause: { image: { repository: "registry.k8s.io/pause", tag: "3.10.1", digest: DIGEST } } },
      singleuser: {
        image: { name: "123456789012.dkr.ecr.us-east-1.amazonaws.com/workbench/pytorch", tag: `2.5-cuda12.4@${DIGEST}`, pullPolicy: "IfNotPresent" },
        profileList: [
          { display_name: "CPU", kubespawner_override: { image: PINNED } },
          {
            display_name: "GPU",
            profile_options: { gpu: { choices: { "a100-80gb": { kubespawner_override: { image: PINNED } } } } },
          },
        ],
      },
      scheduling: { userScheduler: { image: { pullPolicy: "Always" } } },
    };
    expect(checkHelmValuesImagesPinned(RELEASE, { chart: "jupyterhub", version: "4.4.0", values })).toEqual([]);
  });

  it("reports each unpinned reference by its values path, nested profile options included", () => {
    const values = {
      hub: { image: { name: "quay.io/jupyterhub/k8s-hub", tag: "4.4.0" } },
      singleuser: {
        image: { name: `repo@${DIGEST}`, tag: "1.0" },
        profileList: [
          { display_name: "CPU", kubespawner_override: { image: PINNED } },
          { display_name: "latest", kubespawner_override: { image: "jupyter/scipy-notebook:latest" } },
          {
            display_name: "GPU",
            profile_options: {
              gpu: { choices: { "a100-80gb": { kubespawner_override: { image: "repo:cuda" } }, h100: { kubespawner_override: { image: PINNED } } } },
            },
          },
        ],
        initContainers: [{ name: "fix-perms", image: "busybox" }],
      },
      prePuller: { hook: { image: { tag: "4.4.0" } } },
      extra: { image: { repository: "bitnami/redis", digest: "sha256:abc" } },
    };
    expect(checkHelmValuesImagesPinned(CHART, { values })).toEqual([
      `values.hub.image is {"name":"quay.io/jupyterhub/k8s-hub","tag":"4.4.0"}: ${OBJECT_PIN_FIX}`,
      `values.singleuser.image is {"name":"repo@${DIGEST}","tag":"1.0"}: ${OBJECT_PIN_FIX}`,
      `values.singleuser.profileList[1].kubespawner_override.image is "jupyter/scipy-notebook:latest": ${PIN_FIX}`,
      `values.singleuser.profileList[2].profile_options.gpu.choices["a100-80gb"].kubespawner_override.image is "repo:cuda": ${PIN_FIX}`,
      `values.singleuser.initContainers[0].image is "busybox": ${PIN_FIX}`,
      `values.prePuller.hook.image is {"tag":"4.4.0"}: ${OBJECT_PIN_FIX}`,
      `values.extra.image is {"repository":"bitnami/redis","digest":"sha256:abc"}: ${OBJECT_PIN_FIX}`,
    ]);
  });

  it("checks the chart pre-puller's extraImages, whose entries are image objects under arbitrary names", () => {
    const pinned = { name: "registry.example/wb/app", tag: `build-1@sha256:${"a".repeat(64)}` };
    const values = { prePuller: { extraImages: { app: pinned, tools: { name: "registry.example/wb/tools", tag: "1.0" } } } };
    expect(checkHelmValuesImagesPinned(RELEASE, { values })).toEqual([
      `values.prePuller.extraImages.tools is {"name":"registry.example/wb/tools","tag":"1.0"}: ${OBJECT_PIN_FIX}`,
    ]);
  });

  it("skips images unknown at preview, missing values and non-Helm types", () => {
    const values = { singleuser: { image: { name: "repo", tag: UNKNOWN }, profileList: [{ kubespawner_override: { image: UNKNOWN } }] } };
    expect(checkHelmValuesImagesPinned(RELEASE, { values })).toEqual([]);
    expect(checkHelmValuesImagesPinned(RELEASE, { values: UNKNOWN })).toEqual([]);
    expect(checkHelmValuesImagesPinned(RELEASE, { chart: "jupyterhub" })).toEqual([]);
    expect(checkHelmValuesImagesPinned("kubernetes:core/v1:ConfigMap", { values: { image: "nginx" } })).toEqual([]);
  });
});

describe(POLICY_NAMES.jobBounded, () => {
  const JOB = "kubernetes:batch/v1:Job";

  it("accepts a Job with both bounds, zero retries included", () => {
    expect(checkJobBounded(JOB, { spec: { backoffLimit: 0, activeDeadlineSeconds: 1800, template: {} } })).toEqual([]);
    expect(checkJobBounded(JOB, { spec: { backoffLimit: UNKNOWN, activeDeadlineSeconds: UNKNOWN } })).toEqual([]);
  });

  it("reports each missing bound, and a spec that is missing altogether", () => {
    expect(checkJobBounded(JOB, { spec: { activeDeadlineSeconds: 600 } })).toEqual([`spec.backoffLimit is missing, ${BACKOFF_TAIL}`]);
    expect(checkJobBounded(JOB, { spec: { backoffLimit: 1 } })).toEqual([`spec.activeDeadlineSeconds is missing, ${DEADLINE_TAIL}`]);
    expect(checkJobBounded(JOB, {})).toEqual([
      `spec.backoffLimit is missing, ${BACKOFF_TAIL}`,
      `spec.activeDeadlineSeconds is missing, ${DEADLINE_TAIL}`,
    ]);
  });

  it("rejects strings, negatives, fractions and a zero deadline", () => {
    expect(checkJobBounded(JOB, { spec: { backoffLimit: "3", activeDeadlineSeconds: 0 } })).toEqual([
      `spec.backoffLimit is "3", ${BACKOFF_TAIL}`,
      `spec.activeDeadlineSeconds is 0, ${DEADLINE_TAIL}`,
    ]);
    expect(checkJobBounded(JOB, { spec: { backoffLimit: -1, activeDeadlineSeconds: 1.5 } })).toEqual([
      `spec.backoffLimit is -1, ${BACKOFF_TAIL}`,
      `spec.activeDeadlineSeconds is 1.5, ${DEADLINE_TAIL}`,
    ]);
  });

  it("checks a CronJob's job template and ignores other kinds", () => {
    expect(checkJobBounded("kubernetes:batch/v1:CronJob", { spec: { schedule: "@daily", jobTemplate: { spec: { backoffLimit: 2 } } } })).toEqual([
      `spec.jobTemplate.spec.activeDeadlineSeconds is missing, ${DEADLINE_TAIL}`,
    ]);
    expect(checkJobBounded("kubernetes:apps/v1:Deployment", { spec: {} })).toEqual([]);
  });
});

describe(POLICY_NAMES.helmNoPlaintextSecrets, () => {
  it("splits keys into words and matches only the listed trailing words", () => {
    expect(keyWords("OPENAI_API_KEY")).toEqual(["openai", "api", "key"]);
    expect(keyWords("cookieSecret")).toEqual(["cookie", "secret"]);
    expect(keyWords("APIKey")).toEqual(["api", "key"]);
    expect(keyWords("client-secret")).toEqual(["client", "secret"]);
    const secret = ["password", "dbPassword", "passwd", "secret", "client_secret", "clientSecret", "CLIENTSECRET", "cookieSecret",
      "cookie_secret", "secretToken", "token", "apiToken", "api_token", "auth_token", "accessToken", "apiKey", "api_key", "APIKEY",
      "OPENAI_API_KEY", "privateKey", "private_key", "secretKey", "credentials", "credential", "passphrase"];
    const notSecret = ["existingSecret", "existing_secret", "imagePullSecret", "pullSecrets", "secretName", "secretKeyRef",
      "secretSync", "tokenLength", "keyName", "key", "name", "value", "tokens", "passwordFile", "credentialsSecretName"];
    expect(secret.filter((k) => !isSecretKey(k))).toEqual([]);
    expect(notSecret.filter((k) => isSecretKey(k))).toEqual([]);
  });

  it("reports plain strings under secret keys anywhere in values, never printing the value", () => {
    const values = {
      proxy: { secretToken: "0123456789abcdef" },
      hub: {
        cookieSecret: "hunter2",
        db: { password: "pw" },
        config: { GitHubOAuthenticator: { client_id: "abc", client_secret: "s3cr3t" } },
        services: { grafana: { apiToken: "tok" } },
      },
      imagePullSecret: { create: true, username: "bot", password: "registry-pass" },
      singleuser: {
        extraEnv: [
          { name: "LOG_LEVEL", value: "debug" },
          { name: "HF_TOKEN", value: "hf_xxx" },
        ],
      },
    };
    const messages = checkHelmValuesNoPlaintextSecrets(RELEASE, { values });
    expect(messages).toEqual([
      `values.proxy.secretToken ${SECRET_TAIL}`,
      `values.hub.cookieSecret ${SECRET_TAIL}`,
      `values.hub.db.password ${SECRET_TAIL}`,
      `values.hub.config.GitHubOAuthenticator.client_secret ${SECRET_TAIL}`,
      `values.hub.services.grafana.apiToken ${SECRET_TAIL}`,
      `values.imagePullSecret.password ${SECRET_TAIL}`,
      `values.singleuser.extraEnv[1].value (env var "HF_TOKEN") ${SECRET_TAIL}`,
    ]);
    for (const secretValue of ["0123456789abcdef", "hunter2", "s3cr3t", "registry-pass", "hf_xxx"]) {
      expect(messages.join("\n")).not.toContain(secretValue);
    }
  });

  it("reports a value that came from a Pulumi secret: policies receive it unwrapped", () => {
    // What @pulumi/policy hands validateResource for values: {hub: {cookieSecret: pulumi.secret("...")}}.
    expect(checkHelmValuesNoPlaintextSecrets(CHART, { values: { hub: { cookieSecret: "from-pulumi-config" } } })).toEqual([
      `values.hub.cookieSecret ${SECRET_TAIL}`,
    ]);
  });

  it("accepts references: existingSecret names, valueFrom, empty strings, unknowns and non-strings", () => {
    const values = {
      hub: {
        existingSecret: "jupyterhub-secrets",
        cookieSecret: "",
        db: { password: null },
        extraEnv: {
          GITHUB_CLIENT_SECRET: { valueFrom: { secretKeyRef: { name: "github-oauth", key: "client_secret" } } },
        },
      },
      proxy: { secretToken: UNKNOWN, https: { secret: { name: "tls", key: "tls.key", crt: "tls.crt" } } },
      singleuser: {
        image: { pullSecrets: ["ecr-pull"] },
        extraEnv: [
          { name: "API_TOKEN", valueFrom: { secretKeyRef: { name: "api", key: "token" } } },
          { name: "HF_TOKEN", value: "" },
        ],
        serviceAccountToken: false,
      },
      imagePullSecret: { create: false, password: "" },
      imagePullSecrets: ["ecr-pull"],
    };
    expect(checkHelmValuesNoPlaintextSecrets(RELEASE, { values })).toEqual([]);
  });

  it("ignores resources that are not Helm releases or charts", () => {
    expect(checkHelmValuesNoPlaintextSecrets("kubernetes:core/v1:ConfigMap", { values: { password: "x" } })).toEqual([]);
    expect(checkHelmValuesNoPlaintextSecrets(RELEASE, {})).toEqual([]);
  });
});
