/**
 * The pack's policies: each rule of rules.ts wrapped as a mandatory `validateResource` that reports one violation
 * per message. Separate from index.ts because `new PolicyPack(...)` starts the gRPC policy server (and exits the
 * process when a second pack is built), so tests import this file and rules.ts, never index.ts.
 */
import type { ReportViolation, ResourceValidation, ResourceValidationPolicy } from "@pulumi/policy";
import { RULES, type Check } from "./rules";

// @pulumi/policy hands validateResource its inputs wrapped in a proxy that throws UnknownValueError on any read of
// a value unknown during preview, which would end the whole check (the engine then prints "can't run policy ...
// during preview" as advisory and drops every other finding on the resource). The proxy answers this key with the
// plain object underneath (proxy.js, @internal); the rules then skip unknowns value by value.
const PROXY_TARGET = "__getSpecialProxyTarget";

/** The plain inputs under the SDK's unknown-checking proxy; `props` itself when it is not proxied. */
export function plainProps(props: Record<string, unknown>): Record<string, unknown> {
  const target: unknown = props[PROXY_TARGET];
  return typeof target === "object" && target !== null && !Array.isArray(target)
    ? (target as Record<string, unknown>)
    : props;
}

/** A `validateResource` that runs `check` on the resource and reports each message as one violation. */
export function validateWith(check: Check): ResourceValidation {
  return (args, reportViolation: ReportViolation) => {
    for (const message of check(args.type, plainProps(args.props))) reportViolation(message);
  };
}

export const policies: ResourceValidationPolicy[] = RULES.map((rule) => ({
  name: rule.name,
  description: rule.description,
  enforcementLevel: "mandatory",
  validateResource: validateWith(rule.check),
}));
