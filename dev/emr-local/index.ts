export { startLocalEmr, type LocalEmr, type LocalEmrOptions } from './server';
export { LOST_PROCESS_REASON } from './engine';
