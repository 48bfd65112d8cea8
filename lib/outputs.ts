import * as pulumi from "@pulumi/pulumi";

/**
 * Cheaper forms of `pulumi.output`, `pulumi.all(...).apply` and `pulumi.interpolate` for the per-image components
 * (issue #16: plan cost per variant). `pulumi.output(o)` on an Output builds two new Outputs, and `pulumi.all` does
 * that for every Output it is given before combining them; a plan of 1,000 images made hundreds of thousands of
 * such copies, each with its own promises. These apply on the Outputs themselves: the value, its dependencies
 * (resources), secretness and unknowns are those `pulumi.all` would give (an Output returned from `apply` is lifted,
 * its resources and secretness merged).
 */

/** `pulumi.output(v)`, but an Output is returned as it is. */
export function asOutput<T>(v: pulumi.Input<T>): pulumi.Output<T> {
  return pulumi.Output.isInstance(v) ? (v as pulumi.Output<T>) : pulumi.output(v as T) as pulumi.Output<T>;
}

/** `pulumi.all([a, b]).apply(([x, y]) => f(x, y))` without copying `a` and `b`. */
export function combine<A, B, R>(a: pulumi.Input<A>, b: pulumi.Input<B>, f: (a: A, b: B) => pulumi.Input<R>): pulumi.Output<R> {
  if (!pulumi.Output.isInstance(a) && !(a instanceof Promise)) return asOutput(b).apply((y) => f(a as A, y as B)) as pulumi.Output<R>;
  if (!pulumi.Output.isInstance(b) && !(b instanceof Promise)) return asOutput(a).apply((x) => f(x as A, b as B)) as pulumi.Output<R>;
  const bo = asOutput(b);
  return asOutput(a).apply((x) => bo.apply((y) => f(x as A, y as B))) as unknown as pulumi.Output<R>;
}

/** `ref`, resolved only once `after` has (`pulumi.all([ref, after]).apply(([r]) => r)` without the copies). */
export function after<T>(ref: pulumi.Input<T>, after: pulumi.Input<unknown>): pulumi.Output<T> {
  return asOutput(after).apply(() => ref) as pulumi.Output<T>;
}
