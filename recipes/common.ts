export function common(): void {}
