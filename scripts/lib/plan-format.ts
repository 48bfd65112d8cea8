import type { Plan, PlannedResource } from "./plan-runtime";

/** Renderers for the offline plan. All output is deterministic: same plan, same bytes. */

export function planToJson(plan: Plan): string {
  return `${JSON.stringify(plan, null, 2)}\n`;
}

const shortType = (type: string) => type.split(":").pop() ?? type;

function componentOf(r: PlannedResource, byUrn: Map<string, PlannedResource>): PlannedResource | undefined {
  // The outermost component below the stack: ImageVariant, GpuValidation, JupyterHub, ...
  let current: PlannedResource | undefined = r;
  let top: PlannedResource | undefined;
  while (current) {
    if (!current.custom && current.type !== "pulumi:pulumi:Stack") top = current;
    current = current.parent ? byUrn.get(current.parent) : undefined;
  }
  return top;
}

/** The inputs worth reading in a table cell: names, tags, images, targets; long values shortened. */
function keyInputs(r: PlannedResource): string {
  const pick = ["name", "repository", "tags", "target", "platforms", "imageTagMutability", "chart", "version", "namespace", "create", "triggers"];
  const parts: string[] = [];
  for (const key of pick) {
    const v = r.inputs[key];
    if (v === undefined) continue;
    let text = JSON.stringify(v);
    if (text.length > 90) text = `${text.slice(0, 89)}…`;
    parts.push(`\`${key}\`=${text.replace(/\|/g, "\\|")}`);
  }
  const meta = r.inputs["metadata"] as { name?: string; namespace?: string } | undefined;
  if (meta?.name) parts.push(`\`metadata.name\`=${JSON.stringify(meta.name)}`);
  return parts.join("<br>") || "—";
}

export function planToMarkdown(plan: Plan): string {
  const byUrn = new Map(plan.resources.map((r) => [r.urn, r]));
  const groups = new Map<string, PlannedResource[]>();
  for (const r of plan.resources.filter((x) => x.custom)) {
    const c = componentOf(r, byUrn);
    const key = c ? `${shortType(c.type)} \`${c.name}\`` : "Stack";
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const lines = [`# Plan: ${plan.project} / ${plan.stack}`, "", `${plan.resources.filter((r) => r.custom).length} resources in ${groups.size} groups.`, ""];
  for (const [title, rs] of [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    lines.push(`## ${title}`, "", "| Resource | Type | Key inputs | Depends on |", "| --- | --- | --- | --- |");
    for (const r of rs) {
      const deps = r.dependencies.map((d) => `\`${d.split("::").pop()}\``).join(", ") || "—";
      lines.push(`| \`${r.name}\` | ${shortType(r.type)} | ${keyInputs(r)} | ${deps} |`);
    }
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}

/** The dependency graph of custom resources, grouped by component; edges include implicit Output dependencies. */
export function planToMermaid(plan: Plan): string {
  const byUrn = new Map(plan.resources.map((r) => [r.urn, r]));
  const custom = plan.resources.filter((r) => r.custom && !r.type.startsWith("pulumi:providers:"));
  const ids = new Map(custom.map((r, i) => [r.urn, `r${i}`]));
  const lines = ["flowchart LR"];
  const groups = new Map<string, PlannedResource[]>();
  for (const r of custom) {
    const c = componentOf(r, byUrn);
    const key = c ? c.urn : "";
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  let g = 0;
  for (const [urn, rs] of groups) {
    const c = byUrn.get(urn);
    if (c) lines.push(`  subgraph g${g++}["${shortType(c.type)} ${c.name}"]`);
    for (const r of rs) lines.push(`    ${ids.get(r.urn)}["${shortType(r.type)}<br/>${r.name}"]`);
    if (c) lines.push("  end");
  }
  const edges = new Set<string>();
  const resolveCustom = (urn: string): string[] => {
    const r = byUrn.get(urn);
    if (!r) return [];
    if (ids.has(urn)) return [urn];
    // A dependency on a component means a dependency on every custom resource inside it.
    return plan.resources.filter((x) => x.parent === urn).flatMap((x) => resolveCustom(x.urn));
  };
  for (const r of custom) {
    for (const d of r.dependencies.flatMap(resolveCustom)) {
      if (d !== r.urn) edges.add(`  ${ids.get(d)} --> ${ids.get(r.urn)}`);
    }
  }
  lines.push(...[...edges].sort());
  return `${lines.join("\n")}\n`;
}

/** Paths at which two JSON values differ (`tags[0]`, `buildArgs.BASE_IMAGE`). */
export function changedPaths(a: unknown, b: unknown, prefix = ""): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  const bothObjects = a !== null && b !== null && typeof a === "object" && typeof b === "object";
  if (bothObjects && Array.isArray(a) === Array.isArray(b)) {
    if (Array.isArray(a) && Array.isArray(b)) {
      const out: string[] = [];
      for (let i = 0; i < Math.max(a.length, b.length); i++) out.push(...changedPaths(a[i], b[i], `${prefix}[${i}]`));
      return out;
    }
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort();
    return keys.flatMap((k) => changedPaths(ao[k], bo[k], prefix ? `${prefix}.${k}` : k));
  }
  return [prefix || "(value)"];
}

export interface PlanDiff {
  added: PlannedResource[];
  removed: PlannedResource[];
  changed: Array<{ resource: PlannedResource; paths: string[] }>;
  outputs: string[];
}

export function diffPlans(base: Plan, head: Plan): PlanDiff {
  const baseBy = new Map(base.resources.map((r) => [r.urn, r]));
  const headBy = new Map(head.resources.map((r) => [r.urn, r]));
  const added = head.resources.filter((r) => !baseBy.has(r.urn));
  const removed = base.resources.filter((r) => !headBy.has(r.urn));
  const changed: PlanDiff["changed"] = [];
  for (const r of head.resources) {
    const before = baseBy.get(r.urn);
    if (!before) continue;
    const paths = changedPaths(before.inputs, r.inputs);
    if (JSON.stringify(before.dependencies) !== JSON.stringify(r.dependencies)) paths.push("(dependencies)");
    if (JSON.stringify(before.options ?? {}) !== JSON.stringify(r.options ?? {})) paths.push("(options)");
    if (paths.length > 0) changed.push({ resource: r, paths });
  }
  return { added, removed, changed, outputs: changedPaths(base.outputs, head.outputs) };
}

export function diffToMarkdown(diff: PlanDiff, head: Plan): string {
  const custom = (rs: PlannedResource[]) => rs.filter((r) => r.custom);
  const added = custom(diff.added);
  const removed = custom(diff.removed);
  const changed = diff.changed.filter((c) => c.resource.custom);
  const lines = [`### \`${head.stack}\`: ${added.length} to add, ${changed.length} to change, ${removed.length} to remove`, ""];
  if (added.length + removed.length + changed.length === 0 && diff.outputs.length === 0) {
    lines.push("No changes.");
    return `${lines.join("\n")}\n`;
  }
  const row = (r: PlannedResource, extra: string) => `| \`${r.name}\` | ${shortType(r.type)} | ${extra} |`;
  if (added.length > 0) {
    lines.push("**Added**", "", "| Resource | Type | |", "| --- | --- | --- |", ...added.map((r) => row(r, "")), "");
  }
  if (removed.length > 0) {
    lines.push("**Removed**", "", "| Resource | Type | |", "| --- | --- | --- |", ...removed.map((r) => row(r, "")), "");
  }
  if (changed.length > 0) {
    lines.push(
      "**Changed**",
      "",
      "| Resource | Type | Changed inputs |",
      "| --- | --- | --- |",
      ...changed.map((c) => row(c.resource, c.paths.map((p) => `\`${p}\``).join(", "))),
      "",
    );
  }
  if (diff.outputs.length > 0) lines.push(`**Outputs changed:** ${diff.outputs.map((p) => `\`${p}\``).join(", ")}`, "");
  return `${lines.join("\n")}\n`;
}
