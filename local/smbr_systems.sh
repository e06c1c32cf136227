# The stage-10 systems of run.sh and what each starts from; sourced by run.sh and local/tune_smbr.sh.

# smbr_source SYSTEM: the nnet a stage-10 system starts from (student_kd_smbrt: none, it is
# distilled from teacher_smbr).
smbr_source() {
  case $1 in
    teacher_smbr) echo teacher ;;
    student_smbr|student_ts_smbr|student_gate_smbr) echo student_kd ;;
    student_kd_smbrt) ;;
    *) echo "$0: unknown sMBR system $1 (teacher_smbr|student_smbr|student_ts_smbr|student_gate_smbr|student_kd_smbrt)" >&2
       return 1 ;;
  esac
}
