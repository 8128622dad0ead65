export { startLocalEmr, type LocalEmr, type LocalEmrOptions } from './server';
export { LOST_PROCESS_REASON } from './engine';
export { s3aSupport, s3aSparkDefaults, s3aJarPaths, usesS3, type S3aSupport } from './s3a';
