// cinder's message_api.create as the flows use it: the user message a failure leaves for the
// project (`cinder message-list`). The project and request come from the RPC context, as in
// cinder; a failure to write the message is logged and never replaces the flow's own outcome.
import type { CreateMessage } from '../../db/messages.js';
import { logDropped } from '../../log.js';
import type { FlowDeps } from './common.js';

export interface UserMessage extends Omit<CreateMessage, 'projectId' | 'requestId'> {
  /** The resource's project, used when the context carries none (a periodic task, say). */
  fallbackProjectId?: string | null;
}

/** Writes the message; `what` names the failure for the log line when the write itself fails. */
export async function writeUserMessage(deps: FlowDeps, ctx: Record<string, unknown>, m: UserMessage, what: string): Promise<void> {
  const { fallbackProjectId, ...message } = m;
  const projectId = typeof ctx.project_id === 'string' && ctx.project_id ? ctx.project_id : (fallbackProjectId ?? '');
  const requestId = typeof ctx.request_id === 'string' ? ctx.request_id : null;
  await deps.db.messages
    .create({ ...message, projectId, requestId })
    .catch(logDropped(deps.logger, `recording the user message of ${what}`, 'the operation reports its own outcome all the same'));
}
