/**
 * The JobService handlers. Each is a row of the table {@link bindService}
 * wraps: it gets a request already past authentication, role check and job
 * id validation, and a scoped job library that enforces ownership.
 */
import { JobServiceService } from '../gen/jobworker/v1/job_service.js';
import { attachHandler } from './attach.js';
import { ROLES } from './authz.js';
import { toProtoJob, toStreamResponse, toWatchResponse } from './convert.js';
import { listPage } from './paging.js';
import type { Handlers } from './seam.js';
import {
  jobSignal,
  listFilter,
  outputOptions,
  protoNames,
  startSpec,
  stopOptions,
  watchOptions,
} from './validate.js';

/** Every role may call every JobService method; what it may see is decided by `ctx.jobs`. */
const ANY_ROLE = ROLES;

/** The JobService handler table. */
export const jobServiceHandlers: Handlers<typeof JobServiceService> = {
  startJob: {
    roles: ANY_ROLE,
    async handle(request, ctx) {
      const job = await ctx.jobs.start(startSpec(request), ctx.signal, protoNames);
      ctx.noteJob(job.id);
      return { job: toProtoJob(job) };
    },
  },
  stopJob: {
    roles: ANY_ROLE,
    async handle(request, ctx) {
      const job = await ctx.jobs.stop(request.jobId, stopOptions(request, ctx.signal));
      return { job: toProtoJob(job) };
    },
  },
  getJob: {
    roles: ANY_ROLE,
    handle(request, ctx) {
      return Promise.resolve({ job: toProtoJob(ctx.jobs.get(request.jobId)) });
    },
  },
  listJobs: {
    roles: ANY_ROLE,
    handle(request, ctx) {
      const filter = listFilter(request);
      const { jobs, next } = listPage(
        (f) => ctx.jobs.list(f),
        filter,
        request.pageSize,
        request.pageToken,
      );
      return Promise.resolve({ jobs, nextPageToken: next, totalSize: ctx.jobs.count(filter) });
    },
  },
  signalJob: {
    roles: ANY_ROLE,
    handle(request, ctx) {
      const job = ctx.jobs.signal(request.jobId, jobSignal(request), request.all);
      return Promise.resolve({ job: toProtoJob(job) });
    },
  },
  waitJob: {
    roles: ANY_ROLE,
    async handle(request, ctx) {
      return { job: toProtoJob(await ctx.jobs.wait(request.jobId, ctx.signal)) };
    },
  },
  deleteJob: {
    roles: ANY_ROLE,
    async handle(request, ctx) {
      await ctx.jobs.delete(request.jobId, { force: request.force, signal: ctx.signal });
      return {};
    },
  },
  streamOutput: {
    roles: ANY_ROLE,
    async handle(request, ctx, send) {
      for await (const event of ctx.jobs.output(
        request.jobId,
        outputOptions(request, ctx.signal),
      )) {
        await send(toStreamResponse(event));
      }
    },
  },
  attach: attachHandler,
  watchJobs: {
    roles: ANY_ROLE,
    async handle(request, ctx, send) {
      for await (const event of ctx.jobs.watch(watchOptions(request, ctx.signal))) {
        await send(toWatchResponse(event));
      }
    },
  },
};
