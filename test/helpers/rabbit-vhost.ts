// A RabbitMQ vhost of a test's own. Every cinder stack's scheduler consumes the same queue name
// (`cinder-scheduler`), so two stacks on one vhost take each other's requests round-robin: a test
// that runs while another engineer's (or another suite's) stack is up must have its own vhost.
import { execa } from 'execa';

export interface OwnVhost {
  name: string;
  transportUrl: string;
  drop(): Promise<void>;
}

export async function createOwnVhost(prefix: string): Promise<OwnVhost> {
  return createVhost(`${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
}

/**
 * A vhost of exactly this name (a bench told which one to use), guest with all permissions. One
 * left by an earlier run of the same owner is dropped first: its queues would hold stale requests.
 */
export async function createVhost(name: string): Promise<OwnVhost> {
  await execa('rabbitmqctl', ['-q', 'delete_vhost', name], { reject: false });
  await execa('rabbitmqctl', ['-q', 'add_vhost', name]);
  await execa('rabbitmqctl', ['-q', 'set_permissions', '-p', name, 'guest', '.*', '.*', '.*']);
  return {
    name,
    transportUrl: `rabbit://guest:guest@127.0.0.1:5672/${name}`,
    async drop() {
      await execa('rabbitmqctl', ['-q', 'delete_vhost', name], { reject: false });
    },
  };
}
