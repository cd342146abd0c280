import { createServer as createNetServer, Socket, type Server as NetServer } from 'node:net';

/** `Q` (simple query), length 11, "COMMIT\0": how node-postgres sends `client.query('COMMIT')`. */
const COMMIT_QUERY = Buffer.concat([Buffer.from([0x51, 0, 0, 0, 11]), Buffer.from('COMMIT\0', 'latin1')]);

/**
 * A TCP proxy in front of PostgreSQL for fault tests: the server under test connects through it,
 * so a test can make the database go away exactly as a network or a crash would.
 *
 * - `cut()` drops every connection and refuses new ones; `restore()` listens again on the same port.
 * - `armCommitCut()` lets the next COMMIT through, waits for PostgreSQL's answer, drops that answer
 *   and cuts the connection: the transaction is durable and the client never hears of it.
 */
export class PgProxy {
  private server: NetServer | null = null;
  private readonly sockets = new Set<Socket>();
  private commitArmed = false;
  port = 0;
  /** Commits cut so far by `armCommitCut`. */
  commitCuts = 0;

  constructor(
    private readonly host: string,
    private readonly targetPort: number,
  ) {}

  /** A proxy for the PostgreSQL of `url`, listening on a loopback port; `url()` gives the address through it. */
  static async forUrl(url: string): Promise<PgProxy> {
    const target = new URL(url);
    const proxy = new PgProxy(target.hostname, Number(target.port || 5432));
    await proxy.open();
    return proxy;
  }

  /** `url` with its host and port replaced by the proxy's. */
  via(url: string): string {
    const through = new URL(url);
    through.hostname = '127.0.0.1';
    through.port = String(this.port);
    return through.toString();
  }

  /** Cuts the next COMMIT's connection after PostgreSQL has answered it. */
  armCommitCut(): void {
    this.commitArmed = true;
  }

  async open(): Promise<void> {
    const server = createNetServer((client) => {
      const upstream = new Socket();
      this.sockets.add(client).add(upstream);
      let swallowing = false;
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      upstream.connect(this.targetPort, this.host, () => {
        client.on('data', (chunk: Buffer) => {
          if (this.commitArmed && chunk.includes(COMMIT_QUERY)) {
            this.commitArmed = false;
            swallowing = true;
          }
          upstream.write(chunk);
        });
        upstream.on('data', (chunk: Buffer) => {
          if (!swallowing) return void client.write(chunk);
          // PostgreSQL has answered the COMMIT (CommandComplete): the transaction is durable. Cut.
          this.commitCuts++;
          drop();
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', () => resolve()));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** Drops every connection and stops listening, until `restore()`. */
  cut(): void {
    this.server?.close();
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  restore(): Promise<void> {
    return this.open();
  }

  async close(): Promise<void> {
    this.cut();
  }
}
