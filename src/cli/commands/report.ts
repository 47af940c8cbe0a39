import { z } from 'zod';
import { command } from '../common.js';
import { writeReport } from '../../report/report.js';

export const ReportConfigSchema = z.object({
  run: z.string().min(1).describe('the run directory (--out of dmd-train, dmd teacher or dmd classifier)'),
});

export const reportCommand = command({
  name: 'report <run>',
  describe: 'write RUN/report.html: settings, metric charts, sample grids over training, final evaluation (self-contained, offline)',
  schema: ReportConfigSchema,
  run(cfg) {
    const r = writeReport(cfg.run);
    console.log(`wrote ${r.file} (${r.charts.length} charts, ${r.grids} sample grids)`);
  },
});
