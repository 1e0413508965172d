const SECRET_PARAMS = /^(password|passwd|pass|secret|token|access_?key|secret_?key|sas_?token)$/i;

/**
 * A connection URL with its secrets replaced by `****`, for banners, logs and
 * error messages: the userinfo password and query parameters such as
 * `?password=`. Works for any scheme (`sentinel://`, `db+postgresql://`...) and for
 * several URLs joined by `;` (kombu's failover syntax).
 */
export function maskUrl(url: string): string {
  if (url.includes(';')) return url.split(';').map(maskUrl).join(';');
  try {
    const parsed = new URL(url);
    let changed = false;
    if (parsed.password) {
      parsed.password = '****';
      changed = true;
    }
    for (const key of [...parsed.searchParams.keys()]) {
      if (SECRET_PARAMS.test(key)) {
        parsed.searchParams.set(key, '****');
        changed = true;
      }
    }
    return changed ? parsed.toString() : url;
  } catch {
    return url
      .replace(/\/\/([^:@/]*):[^@/]*@/g, '//$1:****@')
      .replace(/([?&](?:password|passwd|pass|secret|token)=)[^&#]*/gi, '$1****');
  }
}
