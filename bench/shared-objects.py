# Aggregates bench/shared-objects.sh: objects retained or released by two or more threads (the
# second busiest with at least a tenth of the operations), per request, with their type.
import sys, collections, subprocess, re, bisect
run, n, binpath = sys.argv[1], float(sys.argv[2]), sys.argv[3]
out=subprocess.run(["perf","script","-i",run + "/perf.data","-F","tid,event,trace"],capture_output=True,text=True).stdout
per=collections.defaultdict(collections.Counter); isa={}
for line in out.splitlines():
    m=re.search(r'^\s*(\d+)\s+probe_libswiftCore:(srt|srl): .*obj=0x([0-9a-f]+) isa=0x([0-9a-f]+)',line)
    if not m: continue
    tid,ev,obj,i=m.group(1),m.group(2),int(m.group(3),16),int(m.group(4),16)
    per[obj][tid]+=1; isa[obj]=i
# map isa (metadata address) to symbol
maps=[]
for line in open(run + '/maps'):
    p=line.split()
    if len(p)>=6 and p[5]==binpath:
        lo,hi=(int(x,16) for x in p[0].split('-')); maps.append((lo,hi,int(p[2],16)))
syms=[]
for line in subprocess.run(["nm","-n",binpath],capture_output=True,text=True).stdout.splitlines():
    p=line.split()
    if len(p)==3: syms.append((int(p[0],16),p[2]))
addrs=[s[0] for s in syms]
segs=[]
for line in subprocess.run(["readelf","-lW",binpath],capture_output=True,text=True).stdout.splitlines():
    p=line.split()
    if p and p[0]=="LOAD": segs.append((int(p[1],16),int(p[2],16),int(p[4],16)))
def tovaddr(fo):
    for off,va,sz in segs:
        if off<=fo<off+sz: return fo-off+va
    return fo
def name(a):
    for lo,hi,off in maps:
        if lo<=a<hi:
            fa=tovaddr(a-lo+off)
            i=bisect.bisect_right(addrs,fa)-1
            return syms[i][1] if i>=0 else '?'
    return hex(a)
rows=[]
for obj,c in per.items():
    if len(c)>=2 and sorted(c.values())[-2] >= 0.1*sum(c.values()):
        rows.append((sum(c.values()),obj,dict(c)))
rows.sort(reverse=True)
names=[name(isa[o]) for _,o,_ in rows[:25]]
dem=subprocess.run(['swift','demangle','--simplified','--compact'],input='\n'.join(names),capture_output=True,text=True).stdout.split('\n')
print("objects retained/released by 2+ threads, ops per request:")
for (t,o,c),d in zip(rows[:25],dem): print(f"{t/n:6.2f} {hex(o)} {d[:90]} {c}")
print("total shared ops/request", round(sum(r[0] for r in rows)/n,2), "of", round(sum(sum(c.values()) for c in per.values())/n,2))
