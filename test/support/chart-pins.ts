/**
 * Prod refuses to deploy a chart image by tag (issue #11), and images/chart-images.yaml cannot pin JupyterHub's
 * images from this machine (no registry access). Tests that plan prod with a hub therefore pin the three images the
 * hub release runs through the stack's own hub values, as a user may, with test digests that name no real image.
 */
const TEST_DIGEST = (n: string) => `sha256:${n.repeat(64)}`;

export const PINNED_HUB_IMAGES = {
  hub: { image: { name: "quay.io/jupyterhub/k8s-hub", tag: `4.4.0@${TEST_DIGEST("1")}` } },
  proxy: { chp: { image: { name: "quay.io/jupyterhub/configurable-http-proxy", tag: `5.2.0@${TEST_DIGEST("2")}` } } },
  singleuser: { networkTools: { image: { name: "quay.io/jupyterhub/k8s-network-tools", tag: `4.4.0@${TEST_DIGEST("3")}` } } },
};

type Values = Record<string, unknown>;

function merge(a: Values, b: Values): Values {
  const out: Values = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prior = out[k];
    out[k] = prior !== null && typeof prior === "object" && !Array.isArray(prior) && v !== null && typeof v === "object" && !Array.isArray(v) ? merge(prior as Values, v as Values) : v;
  }
  return out;
}

/** A stack config (Pulumi key → value) with the hub's chart images pinned in `jupyterhub.values`. */
export function withPinnedHubImages(config: Record<string, unknown>): Record<string, unknown> {
  const hub = (config["workbench-images:jupyterhub"] ?? {}) as { values?: Values };
  return { ...config, "workbench-images:jupyterhub": { ...hub, values: merge(hub.values ?? {}, PINNED_HUB_IMAGES) } };
}
