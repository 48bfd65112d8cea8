import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { LocalRegistryConfig } from "../../lib/registry";
import { parseImageRef } from "../../lib/image-ref";

/** The registry's name on the cluster's Docker network; scripts/up-local.sh points containerd's mirror at it. */
export const LOCAL_REGISTRY_HOST = "local-registry";

export interface LocalRegistryArgs {
  /** The local stack's registry settings (config/ `registry` with kind: local). */
  registry: LocalRegistryConfig;
  /**
   * Name of the docker volume holding the registry's storage.
   * @default `<name>-storage`
   */
  volumeName?: string;
  /**
   * Name of the container on the docker engine.
   * @default `<name>`
   */
  containerName?: string;
}

/** Where the registry image keeps its data (distribution's default filesystem root). */
const STORAGE_PATH = "/var/lib/registry";
/** The port distribution listens on inside its container. */
const CONTAINER_PORT = 5000;

/**
 * The local stack's registry (issue #7): no cloud account, so the program runs the CNCF distribution registry itself
 * on the user's docker engine. The image is pinned by digest; the port is published on 127.0.0.1 only, because the
 * registry has no authentication; storage is a named volume, so pushed images survive a replaced container. The
 * caller passes the docker provider (registry.dockerHost) and makes every build depend on this component.
 */
export class LocalRegistry extends pulumi.ComponentResource {
  readonly image: docker.RemoteImage;
  readonly volume: docker.Volume;
  readonly container: docker.Container;
  /** `host:port` to push to and pull from, e.g. `127.0.0.1:5001`. */
  readonly address: string;

  constructor(name: string, args: LocalRegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:registry:LocalRegistry", name, {}, opts);
    const r = args.registry;
    if (r.kind !== "local") {
      throw new pulumi.ResourceError(`LocalRegistry needs registry.kind "local", got "${String(r.kind)}". Use ECR settings without this component.`, this);
    }
    if (!r.run) {
      throw new pulumi.ResourceError(
        "registry.run is false: a registry is already expected at " +
          `${r.host}:${r.port}. Do not create LocalRegistry then, or set registry.run: true to let the program run one.`,
        this,
      );
    }
    if (parseImageRef(r.image)?.digest === undefined) {
      throw new pulumi.ResourceError(`registry.image "${r.image}" is not pinned by digest. Use repository:tag@sha256:<64 hex>.`, this);
    }

    this.image = new docker.RemoteImage(
      `${name}-image`,
      // keepLocally: destroying the stack must not delete an image the user's engine may share with other projects.
      { name: r.image, keepLocally: true },
      { parent: this },
    );
    this.volume = new docker.Volume(
      `${name}-storage`,
      { name: args.volumeName ?? `${name}-storage`, labels: [{ label: "workbench-images/role", value: "local-registry-storage" }] },
      { parent: this },
    );
    this.container = new docker.Container(
      `${name}-container`,
      {
        name: args.containerName ?? name,
        image: this.image.imageId,
        restart: "unless-stopped",
        // Only loopback: docker publishes on 0.0.0.0 unless an ip is given, which would expose an unauthenticated
        // registry to the network.
        ports: [{ internal: CONTAINER_PORT, external: r.port, ip: "127.0.0.1", protocol: "tcp" }],
        volumes: [{ volumeName: this.volume.name, containerPath: STORAGE_PATH }],
        // Lets `npm run` clean-ups delete manifests through the registry API (distribution's storage.delete).
        envs: ["REGISTRY_STORAGE_DELETE_ENABLED=true"],
        // On the cluster's network, nodes reach the registry as local-registry:5000 (kind's local-registry recipe):
        // the pod specs keep the digest-pinned 127.0.0.1:<port> references and containerd mirrors them there.
        ...(r.clusterNetwork !== null ? { networksAdvanced: [{ name: r.clusterNetwork, aliases: [LOCAL_REGISTRY_HOST] }] } : {}),
        // Builds start only once the registry answers: the image is Alpine-based, so busybox wget is there.
        healthcheck: {
          tests: ["CMD", "wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${CONTAINER_PORT}/v2/`],
          interval: "2s",
          timeout: "2s",
          retries: 15,
          startPeriod: "1s",
        },
        wait: true,
        waitTimeout: 60,
        labels: [{ label: "workbench-images/role", value: "local-registry" }],
      },
      // The fixed name and host port cannot be held by two containers at once: replace by deleting first. The
      // explicit dependency keeps the pull first even while imageId is unknown (preview).
      { parent: this, dependsOn: [this.image], deleteBeforeReplace: true },
    );
    this.address = `${r.host}:${r.port}`;
    this.registerOutputs({ address: this.address, containerId: this.container.id });
  }
}
