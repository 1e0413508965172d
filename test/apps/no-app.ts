/** An -A module that loads fine but exports no app. */
export const answer = 42;
export function helper(): string {
  return 'not an app';
}
