import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { type CatalogEntry, DISCOVERY_TOKEN_ENV, type DiscoveryService, registerScript, unregisterScript } from "./discovery";

export interface DiscoveryRegistrationArgs {
  /** The stack's `discovery` keys. */
  service: DiscoveryService;
  /** Bearer token, a Pulumi secret (the stack's `discoveryToken`). @default none: requests carry no Authorization header (local stack only) */
  token?: pulumi.Input<string>;
  /** Names of the images to register: plain data, one Command each (the images the hub offers). */
  names: string[];
  /** The published catalog; holds an entry for every name. */
  catalog: pulumi.Input<CatalogEntry[]>;
  /** What must succeed first: the hub release (a registered image is one users are offered). */
  after: pulumi.Resource[];
  /** Retries of a transient failure per request. @default 3 */
  retries?: number;
}

/**
 * Registers each offered image's catalog entry with seed 003's discovery service (issue #14): one Command per image
 * that PUTs `<url>/images/<name>` once the hub release succeeded, PUTs again when the entry changes (new digest, new
 * limits) and DELETEs it when the image is no longer offered (the Command is deleted) or on `pulumi destroy`.
 *
 * Why no trigger on the entry: a trigger replaces a Command, and a replacement creates the new one before deleting the
 * old (pulumi-command `triggers` is replaceOnChanges), so the old one's DELETE would remove what the new one had just
 * PUT at the same path. An entry change changes the script, which only updates the Command: its `update` runs (the
 * provider's Update, provider/pkg/provider/local/command.go). The URL is the trigger: a new service gets the PUT, then
 * the old one the DELETE.
 */
export class DiscoveryRegistration extends pulumi.ComponentResource {
  /** Image name → its Command. */
  readonly registrations: Record<string, command.local.Command>;

  constructor(name: string, args: DiscoveryRegistrationArgs, opts?: pulumi.ComponentResourceOptions) {
    super("workbench:hub:DiscoveryRegistration", name, {}, opts);
    const duplicates = args.names.filter((n, i) => args.names.indexOf(n) !== i);
    if (duplicates.length > 0) throw new pulumi.ResourceError(`DiscoveryRegistration "${name}": names are repeated: ${[...new Set(duplicates)].join(", ")}. Register each image once.`, this);
    if (!Number.isInteger(args.service.timeoutSeconds) || args.service.timeoutSeconds < 1) {
      throw new pulumi.ResourceError(`DiscoveryRegistration "${name}": service.timeoutSeconds must be a whole number of seconds above 0, got ${JSON.stringify(args.service.timeoutSeconds)}.`, this);
    }
    const withToken = args.token !== undefined;
    const environment = withToken ? { environment: { [DISCOVERY_TOKEN_ENV]: pulumi.secret(args.token!) } } : {};
    const retries = args.retries !== undefined ? { retries: args.retries } : {};
    const catalog = pulumi.output(args.catalog);
    this.registrations = {};
    for (const image of args.names) {
      const request = { service: args.service, name: image, withToken, ...retries };
      const put = catalog.apply((entries) => {
        const entry = entries.find((e) => e.name === image);
        if (entry === undefined) {
          throw new pulumi.ResourceError(`DiscoveryRegistration "${name}": the catalog has no entry for ${image} (entries: ${entries.map((e) => e.name).join(", ") || "none"}).`, this);
        }
        return registerScript({ ...request, entry });
      });
      this.registrations[image] = new command.local.Command(
        `${name}-${image}`,
        {
          interpreter: ["/bin/sh", "-c"],
          create: put,
          update: put,
          delete: unregisterScript(request),
          ...environment,
          triggers: [args.service.url],
        },
        { parent: this, dependsOn: args.after },
      );
    }
    this.registerOutputs({});
  }
}
