/**
 * Posting a payload: Node's fetch from the machine running dep (no shell, so no webhook URL in any
 * argv), bounded by an AbortSignal. A failure is returned as one line naming the channel, never
 * thrown, and never naming the URL (it is a secret: the token is in it).
 */

/** Why a post failed, in a few words; undefined when it was delivered (a 2xx answer). */
export async function post(url: string, body: unknown, signal: AbortSignal): Promise<string | undefined> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'deployfile-notify' },
      body: JSON.stringify(body),
      signal,
      redirect: 'error',
    })
    // The body is not needed: drop it, so the connection is freed at once.
    await response.body?.cancel().catch(() => undefined)
    return response.ok ? undefined : `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`
  } catch (error) {
    if (signal.aborted) return 'no answer in time'
    const cause = (error as { cause?: { code?: string; message?: string } }).cause
    return cause?.code ?? cause?.message ?? (error as Error).message
  }
}
