/** Public entry of the isolation layer: the only module other layers import. */
export type {
  ExitReport,
  Isolation,
  LaunchSpec,
  Limits,
  RequestedLimits,
  Sandbox,
  Usage,
} from './types.js';
