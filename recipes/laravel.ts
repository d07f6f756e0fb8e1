export function laravel(): void {}
