// glance_api_servers entries as cinder reads them (image/glance.py get_api_servers):
// `[http[s]://]host:port[/path]`, http when no scheme is given.
import { invalidConfigurationValue } from '../errors.js';

export interface GlanceServer {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number;
  /** A path prefix glance is served under (behind a proxy); '' for none. */
  basePath: string;
  /** host:port, for logs */
  host: string;
  origin: string;
}

export function parseGlanceServer(entry: string): GlanceServer {
  const text = entry.includes('//') ? entry : `http://${entry}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalidConfigurationValue('glance_api_servers', entry);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidConfigurationValue('glance_api_servers', entry);
  if (url.username || url.password || url.search || url.hash) throw invalidConfigurationValue('glance_api_servers', entry);
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return {
    protocol: url.protocol,
    // URL keeps IPv6 literals bracketed; http.request wants them bare
    hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    basePath: url.pathname.replace(/\/+$/, ''),
    host: url.host,
    origin: url.origin,
  };
}
