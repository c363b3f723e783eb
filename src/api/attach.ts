/**
 * The Attach handler: one attachment of one caller to one job. Two pumps
 * run side by side and end together: output (the job's output events, as
 * StreamOutput sends them, to the caller) and input (the caller's messages
 * to the job's stdin, terminal size and interrupt). The input pump asks for
 * the next message only once the previous one was handed to the job: a job
 * that does not read blocks the pump, grpc-js stops reading the HTTP/2
 * stream, and the client's writes wait (flow control end to end).
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import type { AttachRequest, AttachResponse } from '../gen/jobworker/v1/job_service.js';
import type { Attachment } from '../job/index.js';
import { linkSignals, raceAbort } from '../signals.js';
import { ROLES } from './authz.js';
import { toProtoJob, toStreamResponse } from './convert.js';
import type { BidiHandler, HandlerContext } from './seam.js';
import { attachStart, checkWindowSize, stdinChunk } from './validate.js';

/** Why the pumps stop when the job has finished and its output is sent: not an error. */
class Done extends Error {
  override readonly name = 'Done';
}

/** The Attach handler. */
export const attachHandler: BidiHandler<AttachRequest, AttachResponse> = {
  roles: ROLES,
  async handle(requests, ctx, send) {
    const input = requests[Symbol.asyncIterator]();
    const first = await input.next();
    if (first.done === true || first.value.event?.$case !== 'start') {
      throw new JobworkerError(
        ErrorCode.InvalidArgument,
        'start is required as the first message of Attach',
      );
    }
    const start = attachStart(first.value.event.value);
    const id = ctx.resolveJob(start.jobId);
    // Ends the attachment (and with it the writer seat) however the call ends.
    const link = linkSignals(ctx.signal);
    const began = Date.now();
    let attachment: Attachment | undefined;
    try {
      attachment = ctx.jobs.attach(id, { write: start.write, signal: link.signal });
      const job = ctx.jobs.get(id);
      await send({
        event: {
          $case: 'attached',
          value: { job: toProtoJob(job), writer: attachment.writer },
        },
      });
      try {
        await Promise.all([
          pumpOutput(ctx, id, start.tailLines, link.signal, send).then(() => {
            link.controller.abort(new Done('finished'));
          }),
          pumpInput(input, attachment, link.signal),
        ]);
      } catch (err) {
        // The job's end stops the input pump: that is the call's success.
        if (link.signal.reason instanceof Done) return;
        throw err;
      }
    } catch (err) {
      // The first failure ends the other pump.
      link.controller.abort(err);
      throw err;
    } finally {
      link.controller.abort(new Done('ended'));
      link.dispose();
      if (attachment !== undefined) {
        ctx.noteAttachment({
          writer: attachment.writer,
          durationMs: Date.now() - began,
          stdinBytes: attachment.bytesIn,
        });
      }
    }
  },
};

/** Sends the job's output until it has finished (the last message is the finished job). */
async function pumpOutput(
  ctx: HandlerContext,
  id: string,
  tailLines: number | undefined,
  signal: AbortSignal,
  send: (message: AttachResponse) => Promise<void>,
): Promise<void> {
  const events = ctx.jobs.output(id, {
    follow: true,
    stdoutOffset: 0,
    stderrOffset: 0,
    ...(tailLines === undefined ? {} : { tailLines }),
    signal,
  });
  for await (const event of events) {
    // StreamOutputResponse and AttachResponse share the output events' numbering and shape.
    await send(toStreamResponse(event));
  }
  signal.throwIfAborted();
}

/** Hands the caller's messages to the job, one at a time, until the caller half-closes or the attachment ends. */
async function pumpInput(
  input: AsyncIterator<AttachRequest>,
  attachment: Attachment,
  signal: AbortSignal,
): Promise<void> {
  for (;;) {
    // The job's end or the call's ends the wait; the pending read stays with the call's stream.
    const next = await raceAbort(input.next(), signal);
    if (next.done === true) return;
    const event = next.value.event;
    if (event === undefined) continue;
    if (event.$case === 'start') {
      throw new JobworkerError(ErrorCode.InvalidArgument, 'start may only be the first message');
    }
    if (!attachment.writer) {
      throw new JobworkerError(
        ErrorCode.InvalidArgument,
        `${event.$case} needs the writer seat; this attachment asked for start.write false`,
      );
    }
    try {
      switch (event.$case) {
        case 'stdin':
          await attachment.write(stdinChunk(event.value));
          break;
        case 'end':
          await attachment.end();
          break;
        case 'resize': {
          const { rows, cols } = checkWindowSize(event.value, 'resize');
          attachment.resize(rows, cols);
          break;
        }
        case 'interrupt':
          attachment.interrupt();
          break;
      }
    } catch (err) {
      // The job ended under a write: the output pump sends its end.
      if (err instanceof JobworkerError && err.code === ErrorCode.AlreadyFinished) return;
      throw err;
    }
  }
}
