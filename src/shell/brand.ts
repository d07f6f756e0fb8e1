const KINDS = Symbol.for('deployfile.kinds')

/*
 * A deployfile compiled by a TypeScript loader may load its own copy of this
 * package. Classes whose instances cross that boundary (commands, errors)
 * carry the names of their class chain, and `instanceof` checks those names,
 * so both copies recognise each other's objects.
 */

/** Records the class chain of `instance` (call from the base constructor). */
export function brand(instance: object): void {
  const names: string[] = []
  for (let proto = Object.getPrototypeOf(instance); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    names.push(proto.constructor.name)
  }
  Object.defineProperty(instance, KINDS, { value: names, enumerable: false })
}

/** `instanceof` by class name, for a class whose instances were branded. */
export function isBranded(value: unknown, className: string): boolean {
  return typeof value === 'object' && value !== null && ((value as Record<symbol, string[]>)[KINDS]?.includes(className) ?? false)
}
