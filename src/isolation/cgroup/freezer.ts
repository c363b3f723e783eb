/**
 * v1 freezer (cgroup-v1/freezer-subsystem.rst): no limit, only used to stop a
 * job on hosts without cgroup2 (freeze, SIGKILL every member, thaw), so that
 * no process can fork between reading cgroup.procs and the kill.
 */
import type { Controller } from './controller.js';

/** v1 "freezer" hierarchy. */
export const freezerV1: Controller = {
  name: 'freezer',
  apply() {
    return Promise.resolve();
  },
  readLimits() {
    return Promise.resolve({});
  },
  usage() {
    return Promise.resolve({});
  },
};
