import * as ecr from "@pulumi/aws/ecr";
import { Provider as AwsProvider } from "@pulumi/aws/provider";
import type { Region } from "@pulumi/aws/types/enums";
import * as docker from "@pulumi/docker";
import { Provider as KubernetesProvider } from "@pulumi/kubernetes/provider";
import * as pulumi from "@pulumi/pulumi";
import type { RegistryConfig, RegistryCredentials } from "../../lib/registry";

export interface ProvidersArgs {
  /** The stack's name, tagged on every AWS resource. */
  stack: string;
  registry: RegistryConfig;
  /** The kubeconfig secret, when the stack has one. @default the file at `cluster.kubeconfigPath` */
  kubeconfig?: pulumi.Input<string>;
  cluster: { context?: string; kubeconfigPath: string };
}

/** The stack's explicit providers: nothing reads ambient AWS or Kubernetes settings. */
export interface Providers {
  kubernetes: KubernetesProvider;
  /** ECR stacks. */
  aws?: AwsProvider;
  /** The local stack's Docker engine (registry container). */
  docker?: docker.Provider;
  /** ECR push and pull credentials for the gates and copies; undefined on the local stack. */
  credentials?: RegistryCredentials;
  /** What image components get as `providers`. */
  list: pulumi.ProviderResource[];
}

export function createProviders(args: ProvidersArgs): Providers {
  // The ambient kubeconfig is never used: the provider gets the stack's kubeconfig secret, or the named context
  // from an explicit kubeconfig path (issue #2).
  const kubernetes = new KubernetesProvider("cluster", {
    kubeconfig: args.kubeconfig ?? args.cluster.kubeconfigPath,
    ...(args.cluster.context !== undefined ? { context: args.cluster.context } : {}),
    enableServerSideApply: true,
  });
  if (args.registry.kind === "local") {
    const dockerProvider = new docker.Provider("local-docker", { host: args.registry.dockerHost });
    return { kubernetes, docker: dockerProvider, list: [kubernetes] };
  }
  const registry = args.registry;
  const awsProvider = new AwsProvider("aws", {
    region: registry.region as Region,
    allowedAccountIds: [registry.accountId],
    defaultTags: { tags: { "workbench-images:stack": args.stack } },
  });
  const token = ecr.getAuthorizationTokenOutput({ registryId: registry.accountId }, { provider: awsProvider });
  const credentials: RegistryCredentials = {
    address: token.proxyEndpoint.apply((e) => e.replace(/^https:\/\//, "")),
    username: token.userName,
    // The ECR token is a credential for 12 hours: secret from the moment it exists, and only it.
    password: pulumi.secret(token.password),
  };
  return { aws: awsProvider, kubernetes, credentials, list: [awsProvider, kubernetes] };
}
