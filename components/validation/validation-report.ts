import * as crypto from "node:crypto";

/**
 * The validation report's way back to the program (issue #15), as plain data and pure functions: the ConfigMap the
 * check pod writes its report into, the service account and Role that let it write exactly that object, the figures
 * the stack outputs publish, and the predicate attested to the digest. No Pulumi resources here; GpuValidation and
 * ReportAttestation wrap these.
 *
 * Why a ConfigMap and not the Job's own output: the termination message keeps only 4096 bytes (the report is tens of
 * KB on an 8-GPU node) and pod logs go with the pod. Why the program attests and not the pod: signing needs the
 * stack's KMS key and registry credentials, which a pod running the image under test must never hold.
 */

/** The key of the report in the ConfigMap: gpu_check.py's REPORT_KEY. */
export const REPORT_KEY = "report.json";
/** The field manager gpu_check.py patches with (its REPORT_FIELD_MANAGER): `managedFields` name the writer. */
export const REPORT_FIELD_MANAGER = "workbench-gpu-check";
/** Where the kubelet mounts a service account token (and ca.crt): gpu_check.py's SERVICEACCOUNT_DIR. */
export const SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/**
 * The in-toto predicate type of the attestation: cosign uses a `--type` that is not one of its keywords verbatim,
 * once it parses as a URI (cmd/cosign/cli/options/predicate.go ParsePredicateType, url.ParseRequestURI). It points at
 * the documentation of the predicate, as the provenance's buildType does (components/supply-chain/provenance.ts).
 */
export const GPU_VALIDATION_PREDICATE_TYPE =
  "https://github.com/workbench-images/workbench-images/blob/main/images/checks/README.md#gpu-validation-attestation-v1";

/**
 * `wbr-…`: the ConfigMap a Job's pod writes its report into, named like its Job (`wbv-<variant>-<pool>-<hash>`, ≤ 63
 * characters) with the prefix swapped, so it stays within the 63 characters object names are held to.
 */
export function reportConfigMapName(jobName: string): string {
  return swapPrefix(jobName, "wbr-");
}

/** `wbw-…`: the service account (and its Role and RoleBinding) that may write only that ConfigMap. */
export function reporterName(jobName: string): string {
  return swapPrefix(jobName, "wbw-");
}

function swapPrefix(jobName: string, prefix: string): string {
  return jobName.startsWith("wbv-") ? `${prefix}${jobName.slice(4)}` : `${prefix}${jobName}`.slice(0, 63).replace(/-+$/, "");
}

export function reporterRules(configMapName: string): Array<{ apiGroups: string[]; resources: string[]; resourceNames: string[]; verbs: string[] }> {
  return [{ apiGroups: [""], resources: ["configmaps"], resourceNames: [configMapName], verbs: ["patch"] }];
}

/** min / median / max. */
export interface Spread {
  min: number;
  median: number;
  max: number;
}

/** One throughput measurement (bf16 matmul or device copy) as published in the stack outputs. */
export interface MeasurementFigures {
  unit: "TFLOP/s" | "GB/s";
  /** Burst figure per GPU, over the node's GPUs. */
  burst: Spread;
  /** The datasheet figure of the product. */
  datasheet: number;
  /** Slowest GPU's burst / datasheet. */
  fraction: number;
  /** The fraction the check required. */
  required: number;
  /** The sustained phase, when it ran. */
  sustained?: {
    seconds: number;
    /** Steady-state figure per GPU, over the node's GPUs. */
    perGpu: Spread;
    /** Worst steady-state / burst of any GPU. */
    ratio: number;
    /** Medians of the steady half, per GPU, spread over the GPUs (absent without NVML samples). */
    smClockMHz?: Spread;
    memClockMHz?: Spread;
    powerW?: Spread;
    /** Hottest sample of any GPU. */
    temperatureMaxC?: number;
    /** Every clocks-event reason seen in any sample of any GPU (e.g. sw_power_cap), in NVML bit order. */
    throttleReasons: string[];
    /** Those of them that are node faults (heat, power delivery). */
    faultReasons: string[];
  };
}

/** One GPU as the report identifies it (NVML). */
export interface GpuIdentity {
  index: number;
  name?: string;
  uuid?: string;
  serial?: string;
}

/**
 * What one Job measured on one pool, as the `validation` stack output carries it (one entry per image × pool).
 * Only `job`, `pool` and `report` are always there: the rest comes from the report, and a report that could not be
 * read back (`report` "missing" or "invalid"; and always under Pulumi's mocks, which read nothing from a cluster)
 * has none of it.
 */
export interface ValidationFigures {
  job: string;
  pool: string;
  /** `stored`: read back and parsed; `missing`: the ConfigMap holds no report; `invalid`: not a v2 report. */
  report: "stored" | "missing" | "invalid";
  /** sha256 (hex) of the report text as stored: the same bytes the attestation carries. */
  reportSha256?: string;
  verdict?: "pass" | "image" | "node";
  /** The one-line verdict. */
  summary?: string;
  mode?: "gpu" | "cpu";
  durationSeconds?: number;
  /** The node the pod ran on (NODE_NAME). */
  node?: string;
  product?: string;
  driver?: string;
  torch?: string;
  gpus?: GpuIdentity[];
  matmul?: MeasurementFigures;
  bandwidth?: MeasurementFigures;
  nccl?: { worldSize: number; busBwGBps?: number; algBwGBps?: number };
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === "object" && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const nums = (v: unknown): number[] => (Array.isArray(v) ? v.map(num).filter((x): x is number => x !== undefined) : []);

/** min / median / max of the values (the median of an even count is the mean of the middle two), or undefined. */
export function spread(values: readonly number[]): Spread | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: s[0]!, median: Math.round(median * 1000) / 1000, max: s[s.length - 1]! };
}

// gpu_check.py CLOCK_REASONS order (NVML bit order), for a stable list.
const REASON_ORDER = [
  "gpu_idle",
  "applications_clocks_setting",
  "sw_power_cap",
  "hw_slowdown",
  "sync_boost",
  "sw_thermal_slowdown",
  "hw_thermal_slowdown",
  "hw_power_brake_slowdown",
  "display_clock_setting",
];
const byReasonOrder = (a: string, b: string) => {
  const ia = REASON_ORDER.indexOf(a);
  const ib = REASON_ORDER.indexOf(b);
  return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : a > b ? 1 : 0);
};

function measurement(check: Json | undefined, unitKey: "tflops" | "gbps"): MeasurementFigures | undefined {
  if (check === undefined || check["status"] === "skip") return undefined;
  const burst = spread(nums(check["perDevice"]));
  const datasheet = num(check[unitKey === "tflops" ? "datasheetTflops" : "datasheetGBps"]);
  const fraction = num(check["fraction"]);
  const required = num(check["required"]);
  if (burst === undefined || datasheet === undefined || fraction === undefined || required === undefined) return undefined;
  const out: MeasurementFigures = { unit: unitKey === "tflops" ? "TFLOP/s" : "GB/s", burst, datasheet, fraction, required };
  const sus = check["sustained"];
  if (isObject(sus)) {
    const per = Array.isArray(sus["perDevice"]) ? sus["perDevice"].filter(isObject) : [];
    const perGpu = spread(nums(per.map((d) => d[unitKey])));
    const ratio = num(sus["ratio"]);
    const seconds = num(sus["seconds"]);
    if (perGpu !== undefined && ratio !== undefined && seconds !== undefined) {
      const nvml = per.map((d) => d["nvml"]).filter(isObject);
      const medians = (key: string) => spread(nums(nvml.map((n) => (isObject(n[key]) ? (n[key] as Json)["median"] : undefined))));
      const temps = nums(nvml.map((n) => (isObject(n["temperatureC"]) ? (n["temperatureC"] as Json)["max"] : undefined)));
      const reasons = new Set<string>();
      const faults = new Set<string>();
      for (const n of nvml) {
        if (isObject(n["clockReasons"])) for (const r of Object.keys(n["clockReasons"])) reasons.add(r);
        if (Array.isArray(n["faultReasons"])) for (const r of n["faultReasons"]) if (typeof r === "string") faults.add(r);
      }
      const sm = medians("smClockMHz");
      const mem = medians("memClockMHz");
      const power = medians("powerW");
      out.sustained = {
        seconds,
        perGpu,
        ratio,
        ...(sm ? { smClockMHz: sm } : {}),
        ...(mem ? { memClockMHz: mem } : {}),
        ...(power ? { powerW: power } : {}),
        ...(temps.length > 0 ? { temperatureMaxC: Math.max(...temps) } : {}),
        throttleReasons: [...reasons].sort(byReasonOrder),
        faultReasons: [...faults].sort(byReasonOrder),
      };
    }
  }
  return out;
}

/**
 * The figures of one stored report (gpu_check.py's JSON v2, images/checks/README.md "Output"), for the stack outputs.
 * Never throws: a report that is absent or not a v2 report says so in `report`, because the outputs are computed on
 * every `pulumi up` and preview, where a broken report must not hide every other output.
 */
export function reportFigures(text: string | undefined, where: { job: string; pool: string }): ValidationFigures {
  const base = { job: where.job, pool: where.pool };
  if (text === undefined || text.trim() === "") return { ...base, report: "missing" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ...base, report: "invalid", reportSha256: sha256(text) };
  }
  if (!isObject(parsed) || parsed["version"] !== 2 || !Array.isArray(parsed["checks"])) {
    return { ...base, report: "invalid", reportSha256: sha256(text) };
  }
  const r = parsed;
  const checks: Record<string, Json> = Object.fromEntries((r["checks"] as unknown[]).filter(isObject).map((c) => [String(c["name"]), c]));
  const device = isObject(r["device"]) ? r["device"] : {};
  const expect = isObject(r["expect"]) ? r["expect"] : {};
  const verdict = r["verdict"] === "pass" || r["verdict"] === "image" || r["verdict"] === "node" ? r["verdict"] : undefined;
  const mode = r["mode"] === "gpu" || r["mode"] === "cpu" ? r["mode"] : undefined;
  const gpus: GpuIdentity[] = (Array.isArray(device["gpus"]) ? device["gpus"].filter(isObject) : []).map((g, i) => {
    const name = str(g["name"]);
    const uuid = str(g["uuid"]);
    const serial = str(g["serial"]);
    return { index: num(g["index"]) ?? i, ...(name ? { name } : {}), ...(uuid ? { uuid } : {}), ...(serial ? { serial } : {}) };
  });
  const matmul = measurement(checks["matmul_throughput"], "tflops");
  const bandwidth = measurement(checks["memory_bandwidth"], "gbps");
  const nccl = checks["nccl"];
  const worldSize = nccl && nccl["status"] !== "skip" ? num(nccl["worldSize"]) : undefined;
  const busBw = nccl ? num(nccl["busBwGBps"]) : undefined;
  const algBw = nccl ? num(nccl["algBwGBps"]) : undefined;
  const summary = str(r["summary"]);
  const duration = num(r["durationSeconds"]);
  const node = str(device["node"]);
  const product = str(expect["product"]);
  const driver = str(device["driver"]);
  const torch = str(device["torch"]);
  return {
    ...base,
    report: "stored",
    reportSha256: sha256(text),
    ...(verdict ? { verdict } : {}),
    ...(summary ? { summary } : {}),
    ...(mode ? { mode } : {}),
    ...(duration !== undefined ? { durationSeconds: duration } : {}),
    ...(node ? { node } : {}),
    ...(product && mode === "gpu" ? { product } : {}),
    ...(driver ? { driver } : {}),
    ...(torch ? { torch } : {}),
    gpus,
    ...(matmul ? { matmul } : {}),
    ...(bandwidth ? { bandwidth } : {}),
    ...(worldSize !== undefined
      ? { nccl: { worldSize, ...(busBw !== undefined ? { busBwGBps: busBw } : {}), ...(algBw !== undefined ? { algBwGBps: algBw } : {}) } }
      : {}),
  };
}

/** One pool's stored report, for the predicate. */
export interface PoolReport {
  pool: string;
  job: string;
  namespace: string;
  /** The report text as the ConfigMap holds it ("" when absent). */
  report: string;
}

/**
 * The predicate of one image's GPU validation attestation (JSON text), and the pools whose report is missing or not
 * a JSON object. One attestation per digest holds every pool, because `cosign attest --replace` keeps one attestation
 * per predicate type (an attestation per pool would replace the others). Pools are sorted, so the text is stable:
 *
 * `{"image": …, "checksSha256": …, "validations": [{"pool", "job", "namespace", "reportSha256", "report"}]}`
 *
 * Each report is embedded as the very bytes the pod stored (`report` is that JSON object, `null` when missing), not
 * parsed and printed again: the report's seed is a 63-bit integer, which a JavaScript number would round, and then
 * `reportSha256` (also in the stack outputs) would no longer hash what the attestation shows.
 */
export function validationPredicate(image: string, checksSha256: string, reports: readonly PoolReport[]): { text: string; missing: string[] } {
  const missing: string[] = [];
  const entries = [...reports]
    .sort((a, b) => (a.pool < b.pool ? -1 : a.pool > b.pool ? 1 : 0))
    .map((r) => {
      let ok = false;
      try {
        ok = r.report.trim() !== "" && isObject(JSON.parse(r.report));
      } catch {
        ok = false;
      }
      if (!ok) missing.push(r.pool);
      const head = JSON.stringify({ pool: r.pool, job: r.job, namespace: r.namespace, reportSha256: sha256(r.report) });
      return `    ${head.slice(0, -1)},"report":${ok ? r.report.trim() : "null"}}`;
    });
  const text = `{\n  "image": ${JSON.stringify(image)},\n  "checksSha256": ${JSON.stringify(checksSha256)},\n  "validations": [\n${entries.join(",\n")}\n  ]\n}\n`;
  return { text, missing };
}

function sha256(text: string): string {
  return crypto.createHash("sha256").update(text, "utf8").digest("hex");
}
