import { command } from '../common.js';
import { TeacherConfigSchema, trainTeacher } from '../../teacher/train.js';
import { reportHooks } from '../../report/report.js';

export const teacherCommand = command({
  name: 'teacher',
  describe: 'train an EDM teacher (EDM loss, Adam, EMA) and write it as a teacher file',
  schema: TeacherConfigSchema,
  async run(cfg) {
    const r = await trainTeacher(cfg, console.log, { hooks: reportHooks(cfg.out) });
    console.log(`${r.status === 'done' ? 'finished' : 'stopped'}: ${r.steps} steps (${(r.seconds / 60).toFixed(1)} min in this process)`);
  },
});
