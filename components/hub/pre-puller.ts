import { k8sName } from "../../lib/naming";

/**
 * Pre-pulling profile images onto the nodes that will run them, so a user's first spawn does not wait minutes for a
 * multi-GB pull. zero-to-jupyterhub's continuous puller pulls CPU images (prePuller.extraImages) onto every user
 * node; GPU images would land on CPU nodes that way, so each GPU pool gets its own DaemonSet pulling only the images
 * validated on it (issue #6).
 * Each image is an init container that exits at once; the pause container keeps the pod (and so the image) around.
 */

/** registry.k8s.io/pause:3.10, pinned by its published digest. */
export const PAUSE_IMAGE = "registry.k8s.io/pause:3.10@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a";

export interface PullGroup {
  /** `cpu` or the pool name. */
  name: string;
  images: string[];
  nodeSelector: Record<string, string>;
  tolerations: Array<{ key: string; operator?: string; value?: string; effect?: string }>;
}

export function prePullDaemonSet(namespace: string, group: PullGroup): Record<string, unknown> {
  const name = k8sName("workbench-prepull", group.name);
  const labels = { "app.kubernetes.io/name": "workbench-prepull", "app.kubernetes.io/instance": group.name };
  return {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: { name, namespace, labels },
    spec: {
      selector: { matchLabels: labels },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "100%" } },
      template: {
        metadata: { labels },
        spec: {
          nodeSelector: group.nodeSelector,
          tolerations: group.tolerations,
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 0,
          initContainers: group.images.map((image, i) => ({
            name: `image-${i}`,
            image,
            // Any image we publish has a POSIX shell; running `true` proves the image is pulled and starts.
            command: ["/bin/sh", "-c", "true"],
            resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { memory: "64Mi" } },
            securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, runAsUser: 65534 },
          })),
          containers: [
            {
              name: "pause",
              image: PAUSE_IMAGE,
              resources: { requests: { cpu: "1m", memory: "8Mi" }, limits: { memory: "16Mi" } },
              securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, runAsUser: 65534 },
            },
          ],
        },
      },
    },
  };
}
