import { Command, InvalidArgumentError } from 'commander';

import { s3aSupport } from './s3a';
import { startLocalEmr } from './server';

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in ${min}..${max}`);
    }
    return n;
  };
}

const program = new Command()
  .name('local-emr')
  .description('A local stand-in for one Amazon EMR cluster: runs command-runner.jar spark-submit steps')
  .option('--host <host>', 'interface to listen on', '127.0.0.1')
  .option('--port <port>', 'port (0 picks a free one)', integer(0, 65535), 8990)
  .option('--state-dir <dir>', 'where steps, logs and stats are kept', '.sparkify/emr')
  .option('--cluster-id <id>', 'the cluster id', 'j-SPARKIFYLOCAL')
  .option('--region <region>', "the region in the cluster's ARN", 'us-east-1')
  .option('--concurrency <n>', 'step concurrency level', integer(1, 256), 1)
  .option('--spark-submit <path>', 'local spark-submit (default: <repo>/.venv/bin/spark-submit)')
  .option('--python <path>', 'PYSPARK_PYTHON for steps (default: <repo>/.venv/bin/python)')
  .option('--master <master>', 'Spark master when a step names none', 'local[2]')
  .option('--allow <command...>', 'commands command-runner.jar may run besides spark-submit')
  .option('--s3a', 'give Spark steps the S3A connector (scripts/setup-s3a), for s3:// and s3a:// paths')
  .option(
    '--s3-endpoint <url>',
    'an S3-compatible endpoint for the steps (path-style; implies --s3a); credentials: the default chain',
  )
  .option('--leave-steps-running', 'on exit, leave running steps for the next server to re-attach')
  .option('-v, --verbose', 'log each request to stderr')
  .action(async (o: Record<string, unknown>) => {
    const sparkSubmit = o.sparkSubmit as string | undefined;
    const s3 =
      o.s3a || o.s3Endpoint
        ? s3aSupport({
            ...(o.s3Endpoint ? { endpoint: o.s3Endpoint as string } : {}),
            ...(sparkSubmit ? { sparkSubmit } : {}),
          })
        : {};
    const emr = await startLocalEmr({
      ...s3,
      host: o.host as string,
      port: o.port as number,
      stateDir: o.stateDir as string,
      clusterId: o.clusterId as string,
      region: o.region as string,
      stepConcurrency: o.concurrency as number,
      master: o.master as string,
      allowedCommands: ['spark-submit', ...((o.allow as string[] | undefined) ?? [])],
      verbose: Boolean(o.verbose),
      ...(o.sparkSubmit ? { sparkSubmit: o.sparkSubmit as string } : {}),
      ...(o.python ? { pythonPath: o.python as string } : {}),
    });
    process.stdout.write(`${emr.endpoint}\n`);
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`local-emr: ${signal}, stopping\n`);
      emr.close({ killSteps: !o.leaveStepsRunning }).then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`local-emr: ${String(err)}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`local-emr: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
